"""``chargeledger stations|tokens|tariffs|command``: registries, tariffs and commands, through
the HTTP API of a running ChargeLedger (``up`` or ``gateway``), so one write path serves CLI and
API."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import httpx
import typer

from .core.ids import STATION_ID_RULE, is_station_id
from .registry import passwords

EXIT_USAGE = 2
EXIT_FAILURE = 1

stations = typer.Typer(
    help="Add, list, enable and disable stations (the station registry); their meter keys and"
    " time zones.",
    no_args_is_help=True,
)
tokens = typer.Typer(
    help="Add, list and change id tokens (the id-token registry).", no_args_is_help=True
)

ApiUrl = Annotated[
    str,
    typer.Option(
        envvar="CHARGELEDGER_API_URL",
        help="HTTP API of a running ChargeLedger.",
    ),
]
_CREDENTIALS: dict[str, str] = {}  # the API token given to this command


def _use_token(token: str | None) -> str | None:
    if token:
        _CREDENTIALS["token"] = token
    return token


def _auth() -> dict[str, str]:
    """The request headers that carry the API token, if one was given."""
    token = _CREDENTIALS.get("token")
    return {"Authorization": f"Bearer {token}"} if token else {}


ApiToken = Annotated[
    str | None,
    typer.Option(
        envvar="CHARGELEDGER_API_TOKEN",
        help="API token (`chargeledger api-tokens create`) with a role that may do this.",
        callback=_use_token,
        show_default=False,
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
PageSize = Annotated[
    int,
    typer.Option(
        min=1, max=10000, help="Items asked for per request; every page is fetched and printed."
    ),
]
PAGE_SIZE = 1000
DEFAULT_API = "http://127.0.0.1:8080"


def _fail(message: str, code: int) -> None:
    typer.echo(f"chargeledger: error: {message}", err=True)
    raise typer.Exit(code)


def _request(api_url: str, method: str, path: str, body: Any = None, timeout_s: float = 30) -> Any:
    return _call(api_url, method, path, body, timeout_s)[1]


def _all(api_url: str, path: str, page_size: int) -> list[Any]:
    """Every item of a list, page by page (following the API's X-Next-After)."""
    items: list[Any] = []
    params: dict[str, Any] = {"limit": page_size}
    while True:
        response, page = _call(api_url, "GET", path, params=params)
        items.extend(page)
        after = response.headers.get("X-Next-After")
        if after is None:
            return items
        params = {"limit": page_size, "after": after}


def _call(
    api_url: str,
    method: str,
    path: str,
    body: Any = None,
    timeout_s: float = 30,
    params: dict[str, Any] | None = None,
) -> tuple[httpx.Response, Any]:
    url = f"{api_url.rstrip('/')}/api/v1{path}"
    try:
        response = httpx.request(
            method, url, json=body, timeout=timeout_s, params=params, headers=_auth()
        )
    except httpx.HTTPError as exc:
        _fail(
            f"cannot reach the ChargeLedger API at {api_url} ({exc}); start `chargeledger up`"
            " or point --api-url at it",
            EXIT_FAILURE,
        )
    try:
        data = response.json()
    except ValueError:
        data = None
    # A command's outcome is reported as it is, whatever its status.
    outcome = isinstance(data, dict) and ("command_id" in data or "command_ids" in data)
    if response.status_code >= 400 and not outcome:
        _fail(f"{method} {path}: {_detail(response)}", EXIT_FAILURE)
    return response, data


def _detail(response: httpx.Response) -> str:
    detail = _message(response)
    if response.status_code == 401:
        detail += "; give an API token with --api-token or CHARGELEDGER_API_TOKEN"
    return detail


def _message(response: httpx.Response) -> str:
    """What an error answer of the API says."""
    try:
        data = response.json()
    except ValueError:
        return response.text
    detail = data.get("detail", response.text) if isinstance(data, dict) else response.text
    if isinstance(detail, list):  # validation errors: each field and why
        return "; ".join(f"{'.'.join(map(str, d['loc'][1:]))}: {d['msg']}" for d in detail)
    return str(detail)


def _station(station_id: str) -> str:
    """A station id as a segment of an API path; exit 2 when it is not one."""
    if not is_station_id(station_id):
        _fail(f"station id {station_id!r} is not {STATION_ID_RULE}", EXIT_USAGE)
    return quote(station_id, safe="")


def _print(rows: list[dict[str, Any]], columns: list[str], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    widths = {c: max([len(c), *(len(str(r.get(c) or "-")) for r in rows)]) for c in columns}
    typer.echo("  ".join(c.ljust(widths[c]) for c in columns).rstrip())
    for row in rows:
        typer.echo("  ".join(str(row.get(c) or "-").ljust(widths[c]) for c in columns).rstrip())


def _password(from_stdin: bool, generate: bool) -> str | None:
    if from_stdin and generate:
        _fail("use --password-stdin or --generate-password, not both", EXIT_USAGE)
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if generate:
        password = passwords.generate()
        typer.echo(f"password: {password}  (shown once; configure it on the station)", err=True)
        return password
    return None


PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the station's password from stdin.")
]
GeneratePassword = Annotated[
    bool, typer.Option("--generate-password", help="Generate a password and print it once.")
]
STATION_COLUMNS = ["station_id", "enabled", "has_password", "revision", "updated_at"]
TOKEN_COLUMNS = ["id_token", "status", "expires_at", "group_id", "account_id", "token_type"]


@stations.command("add")
def add_station(
    station_id: str,
    password_stdin: PasswordStdin = False,
    generate_password: GeneratePassword = False,
    disabled: Annotated[bool, typer.Option("--disabled", help="Register it disabled.")] = False,
    api_url: ApiUrl = DEFAULT_API,
    api_token: ApiToken = None,
) -> None:
    """Register a station; with a password it must use HTTP Basic auth."""
    _station(station_id)
    body = {
        "station_id": station_id,
        "password": _password(password_stdin, generate_password),
        "enabled": not disabled,
    }
    _print([_request(api_url, "POST", "/stations", body)], STATION_COLUMNS, False)


@stations.command("list")
def list_stations(
    api_url: ApiUrl = DEFAULT_API,
    api_token: ApiToken = None,
    as_json: AsJson = False,
    page_size: PageSize = PAGE_SIZE,
) -> None:
    """List stations: registered ones, and any the ledger has seen connect."""
    _print(_all(api_url, "/stations", page_size), STATION_COLUMNS, as_json)


@stations.command("disable")
def disable_station(
    station_id: str, api_url: ApiUrl = DEFAULT_API, api_token: ApiToken = None
) -> None:
    """Disable a station: its BootNotification is answered Rejected."""
    result = _request(api_url, "PATCH", f"/stations/{_station(station_id)}", {"enabled": False})
    _print([result], STATION_COLUMNS, False)


@stations.command("enable")
def enable_station(
    station_id: str, api_url: ApiUrl = DEFAULT_API, api_token: ApiToken = None
) -> None:
    """Enable a station again."""
    result = _request(api_url, "PATCH", f"/stations/{_station(station_id)}", {"enabled": True})
    _print([result], STATION_COLUMNS, False)


@stations.command("set-password")
def set_station_password(
    station_id: str,
    password_stdin: PasswordStdin = False,
    generate_password: GeneratePassword = False,
    remove: Annotated[bool, typer.Option("--remove", help="Remove the password.")] = False,
    api_url: ApiUrl = DEFAULT_API,
    api_token: ApiToken = None,
) -> None:
    """Set (or remove) a station's HTTP Basic auth password."""
    password = _password(password_stdin, generate_password)
    if (password is None) == (not remove):
        _fail("give --password-stdin, --generate-password or --remove", EXIT_USAGE)
    body = {"password": password, "remove_password": remove}
    _print(
        [_request(api_url, "PATCH", f"/stations/{_station(station_id)}", body)],
        STATION_COLUMNS,
        False,
    )


METER_KEY_COLUMNS = ["station_id", "revision", "meter_serial", "valid_from", "public_key"]


def _station_request(
    api_url: str,
    method: str,
    station_id: str,
    what: str,
    body: Any,
    columns: list[str],
    as_json: bool,
) -> None:
    """A request about one of a station's settings; its answer (one row or a list) printed."""
    path = f"/stations/{_station(station_id)}/{what}"
    result = (
        _all(api_url, path, PAGE_SIZE) if method == "GET" else _request(api_url, method, path, body)
    )
    _print(result if isinstance(result, list) else [result], columns, as_json)


@stations.command("meter-key")
def register_meter_key(
    station_id: str,
    public_key: Annotated[
        str,
        typer.Argument(
            help="The key as hex, base64 or PEM (DER SubjectPublicKeyInfo, or the bare EC"
            " point), or a file holding it."
        ),
    ],
    meter_serial: Annotated[
        str | None, typer.Option(help="Only for the meter with this serial (OCMF MS).")
    ] = None,
    api_url: ApiUrl = DEFAULT_API,
    api_token: ApiToken = None,
) -> None:
    """Register a meter public key: signed meter values of sessions starting from now on are
    verified with it."""
    path = Path(public_key)
    try:
        is_file = len(public_key) < 4096 and path.is_file()
    except OSError:  # a key too long for a file name
        is_file = False
    if is_file:
        try:
            public_key = path.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            _fail(f"cannot read the key file {path}: {exc}", EXIT_USAGE)
    body = {"public_key": public_key, "meter_serial": meter_serial}
    _station_request(api_url, "POST", station_id, "meter-keys", body, METER_KEY_COLUMNS, False)


@stations.command("meter-keys")
def list_meter_keys(
    station_id: str,
    api_url: ApiUrl = DEFAULT_API,
    api_token: ApiToken = None,
    as_json: AsJson = False,
) -> None:
    """List the meter public keys registered for a station."""
    _station_request(api_url, "GET", station_id, "meter-keys", None, METER_KEY_COLUMNS, as_json)


TIME_ZONE_COLUMNS = ["station_id", "revision", "time_zone", "valid_from"]


@stations.command("time-zone")
def set_time_zone(
    station_id: str,
    time_zone: Annotated[str, typer.Argument(help="An IANA name, e.g. Europe/Stockholm.")],
    api_url: ApiUrl = DEFAULT_API,
    api_token: ApiToken = None,
) -> None:
    """Set a station's local time zone: tariff restrictions of sessions starting from now on
    apply in it."""
    body = {"time_zone": time_zone}
    _station_request(api_url, "PUT", station_id, "time-zone", body, TIME_ZONE_COLUMNS, False)


@stations.command("time-zones")
def list_time_zones(
    station_id: str,
    api_url: ApiUrl = DEFAULT_API,
    api_token: ApiToken = None,
    as_json: AsJson = False,
) -> None:
    """List the time zones set for a station."""
    _station_request(api_url, "GET", station_id, "time-zones", None, TIME_ZONE_COLUMNS, as_json)


Status = Annotated[
    str | None, typer.Option(help="Accepted, Blocked, Expired or Invalid (default: Accepted).")
]
Expires = Annotated[
    datetime | None,
    typer.Option(
        formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d"],
        help="Expiry (UTC if no offset is given), e.g. 2027-01-01 or 2027-01-01T00:00:00+01:00.",
    ),
]
Group = Annotated[str | None, typer.Option(help="Group / parent id tag.")]
Account = Annotated[str | None, typer.Option(help="Account billed for this token.")]
TokenType = Annotated[str | None, typer.Option("--type", help="OCPP 2.x type, e.g. ISO14443.")]


def _expiry(expires: datetime | None) -> str | None:
    if expires is None:
        return None
    return (expires if expires.tzinfo else expires.replace(tzinfo=UTC)).isoformat()


@tokens.command("add")
def add_token(
    id_token: str,
    status: Status = None,
    expires: Expires = None,
    group: Group = None,
    account: Account = None,
    token_type: TokenType = None,
    api_url: ApiUrl = DEFAULT_API,
    api_token: ApiToken = None,
) -> None:
    """Register an id token."""
    body = {
        "id_token": id_token,
        "status": status or "Accepted",
        "expires_at": _expiry(expires),
        "group_id": group,
        "account_id": account,
        "token_type": token_type,
    }
    _print([_request(api_url, "POST", "/tokens", body)], TOKEN_COLUMNS, False)


@tokens.command("list")
def list_tokens(
    api_url: ApiUrl = DEFAULT_API,
    api_token: ApiToken = None,
    as_json: AsJson = False,
    page_size: PageSize = PAGE_SIZE,
) -> None:
    """List registered id tokens (all of them, page by page)."""
    _print(_all(api_url, "/tokens", page_size), TOKEN_COLUMNS, as_json)


@tokens.command("update")
def update_token(
    id_token: str,
    status: Status = None,
    expires: Expires = None,
    group: Group = None,
    account: Account = None,
    token_type: TokenType = None,
    api_url: ApiUrl = DEFAULT_API,
    api_token: ApiToken = None,
) -> None:
    """Change the given fields of an id token (others stay as they are)."""
    given = {
        "status": status,
        "expires_at": _expiry(expires),
        "group_id": group,
        "account_id": account,
        "token_type": token_type,
    }
    body = {k: v for k, v in given.items() if v is not None}
    if not body:
        _fail("give at least one of --status, --expires, --group, --account, --type", EXIT_USAGE)
    _print(
        [_request(api_url, "PATCH", f"/tokens/{quote(id_token, safe='')}", body)],
        TOKEN_COLUMNS,
        False,
    )


@tokens.command("block")
def block_token(
    id_token: str,
    api_url: ApiUrl = DEFAULT_API,
    api_token: ApiToken = None,
) -> None:
    """Block an id token: gateways answer Blocked within their token cache time."""
    result = _request(
        api_url, "PATCH", f"/tokens/{quote(id_token, safe='')}", {"status": "Blocked"}
    )
    _print([result], TOKEN_COLUMNS, False)


@tokens.command("sync-local-list")
def sync_local_list(
    station_id: str,
    full: Annotated[
        bool, typer.Option("--full", help="Send the whole list, not only what changed.")
    ] = False,
    timeout: Annotated[int, typer.Option(help="Seconds to wait for each answer.")] = 30,
    api_url: ApiUrl = DEFAULT_API,
    api_token: ApiToken = None,
    as_json: AsJson = False,
) -> None:
    """Send the registered id tokens to a connected station as its local authorization list.

    Versioned and differential: only what changed since the list the station holds (Full when
    that is not known, or with --full). Exit code 1 unless the station accepted the list or
    already had it.
    """
    result = _request(
        api_url,
        "POST",
        f"/stations/{_station(station_id)}/local-list/sync",
        {"full": full, "timeout_s": timeout},
        timeout_s=3 * timeout + 15,
    )
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        typer.echo(_sync_summary(result))
        for skipped in result["skipped"]:
            typer.echo(f"not sent: {skipped}", err=True)
    if result["status"] not in ("Accepted", "UpToDate"):
        raise typer.Exit(EXIT_FAILURE)


def _sync_summary(result: dict[str, Any]) -> str:
    where = f"{result['station_id']} ({result['ocpp_version']})"
    if result["status"] == "UpToDate":
        return f"{where}: list version {result['list_version']} is up to date; nothing sent"
    if result["update_type"] is None:
        return f"{where}: {result['status']}: {result['error']}"
    counts = (
        f"{result['added']} entries"
        if result["update_type"] == "Full"
        else f"{result['added']} added, {result['changed']} changed, {result['removed']} removed"
    )
    return (
        f"{where}: {result['update_type']} update ({counts}) to list version"
        f" {result['sent_version']}: {result['status']}"
    )


def send_command(
    station_id: str,
    action: Annotated[str, typer.Argument(help="OCPP action, e.g. Reset or GetVariables.")],
    payload: Annotated[
        str, typer.Option(help='Request payload as JSON, e.g. \'{"type": "Soft"}\'.')
    ] = "{}",
    payload_file: Annotated[
        Path | None,
        typer.Option(help="Read the payload (JSON) from this file instead; - reads stdin."),
    ] = None,
    timeout: Annotated[int, typer.Option(help="Seconds to wait for the answer.")] = 30,
    api_url: ApiUrl = DEFAULT_API,
    api_token: ApiToken = None,
) -> None:
    """Send a command (any request of the station's OCPP version) and print its answer."""
    where = "--payload"
    if payload_file is not None:
        where = str(payload_file)
        try:
            payload = sys.stdin.read() if str(payload_file) == "-" else payload_file.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            _fail(f"cannot read {payload_file}: {exc}", EXIT_USAGE)
    try:
        body = {"action": action, "payload": json.loads(payload), "timeout_s": timeout}
    except json.JSONDecodeError as exc:
        _fail(f"{where} is not JSON: {exc}", EXIT_USAGE)
    result = _request(
        api_url, "POST", f"/stations/{_station(station_id)}/commands", body, timeout_s=timeout + 15
    )
    typer.echo(json.dumps(result, indent=2))
    if result["status"] != "Answered":
        raise typer.Exit(EXIT_FAILURE)


tariffs = typer.Typer(
    help="Import, export, list and assign tariffs (OCPI 2.2.1 Tariff JSON).", no_args_is_help=True
)
TARIFF_COLUMNS = ["tariff_id", "revision", "currency", "valid_from", "valid_to", "put_at"]
ASSIGNMENT_COLUMNS = [
    "assignment_id",
    "tariff_id",
    "station_id",
    "evse_id",
    "connector_id",
    "valid_from",
    "valid_to",
]


def _raw(api_url: str, method: str, path: str, content: bytes | None = None) -> httpx.Response:
    """A request whose JSON is passed through as text (tariff numbers stay exact)."""
    url = f"{api_url.rstrip('/')}/api/v1{path}"
    try:
        response = httpx.request(
            method,
            url,
            content=content,
            headers={"Content-Type": "application/json", **_auth()},
            timeout=30,
        )
    except httpx.HTTPError as exc:
        _fail(
            f"cannot reach the ChargeLedger API at {api_url} ({exc}); start `chargeledger up`"
            " or point --api-url at it",
            EXIT_FAILURE,
        )
    if response.status_code >= 400:
        _fail(f"{method} {path}: {_detail(response)}", EXIT_FAILURE)
    return response


@tariffs.command("put")
def put_tariff(
    file: Annotated[Path, typer.Argument(help="OCPI 2.2.1 Tariff JSON file.")],
    api_url: ApiUrl = DEFAULT_API,
    api_token: ApiToken = None,
) -> None:
    """Store a tariff (its "id" names it) as its next version."""
    try:
        content = file.read_bytes()
        tariff_id = json.loads(content)["id"]
    except OSError as exc:
        _fail(f"cannot read {file}: {exc.strerror}", EXIT_USAGE)
    except (ValueError, KeyError, TypeError):
        _fail(f'{file} is not an OCPI Tariff: JSON with an "id"', EXIT_USAGE)
    response = _raw(api_url, "PUT", f"/tariffs/{tariff_id}", content)
    state = "stored" if response.status_code == 201 else "unchanged"
    typer.echo(f"tariff {tariff_id} revision {response.headers['X-Tariff-Revision']}: {state}")


@tariffs.command("get")
def get_tariff(
    tariff_id: str,
    revision: Annotated[int | None, typer.Option(help="Default: the newest.")] = None,
    api_url: ApiUrl = DEFAULT_API,
    api_token: ApiToken = None,
) -> None:
    """Print a tariff as OCPI 2.2.1 Tariff JSON."""
    query = f"?revision={revision}" if revision else ""
    typer.echo(_raw(api_url, "GET", f"/tariffs/{tariff_id}{query}").text)


@tariffs.command("list")
def list_tariffs(
    api_url: ApiUrl = DEFAULT_API,
    api_token: ApiToken = None,
    as_json: AsJson = False,
    page_size: PageSize = PAGE_SIZE,
) -> None:
    """List tariffs (their newest versions)."""
    _print(_all(api_url, "/tariffs", page_size), TARIFF_COLUMNS, as_json)


@tariffs.command("assign")
def assign_tariff(
    tariff_id: str,
    station: Annotated[str | None, typer.Option(help="Only this station (default: all).")] = None,
    evse: Annotated[int | None, typer.Option(help="OCPP 2.x EVSE of the connector.")] = None,
    connector: Annotated[int | None, typer.Option(help="Only this connector.")] = None,
    valid_from: Annotated[
        datetime | None, typer.Option("--from", help="From (ISO 8601, UTC); default now.")
    ] = None,
    valid_to: Annotated[
        datetime | None, typer.Option("--to", help="Until (ISO 8601, UTC).")
    ] = None,
    api_url: ApiUrl = DEFAULT_API,
    api_token: ApiToken = None,
) -> None:
    """Assign a tariff to a connector, a station, or as the default."""
    body = {
        "tariff_id": tariff_id,
        "station_id": station,
        "evse_id": evse,
        "connector_id": connector,
        "valid_from": _utc(valid_from),
        "valid_to": _utc(valid_to),
    }
    _print([_request(api_url, "POST", "/tariff-assignments", body)], ASSIGNMENT_COLUMNS, False)


@tariffs.command("assignments")
def list_assignments(
    api_url: ApiUrl = DEFAULT_API,
    api_token: ApiToken = None,
    as_json: AsJson = False,
    page_size: PageSize = PAGE_SIZE,
) -> None:
    """List tariff assignments."""
    _print(_all(api_url, "/tariff-assignments", page_size), ASSIGNMENT_COLUMNS, as_json)


def _utc(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


invoices = typer.Typer(help="Invoices and credit notes.", no_args_is_help=True)


@invoices.command("evidence")
def invoice_evidence(
    invoice_number: str, api_url: ApiUrl = DEFAULT_API, api_token: ApiToken = None
) -> None:
    """Print the chain behind a document as JSON: invoice, session, every OCPP frame."""
    typer.echo(_raw(api_url, "GET", f"/invoices/{invoice_number}/evidence").text)


@invoices.command("cdr")
def invoice_cdr(
    invoice_number: str, api_url: ApiUrl = DEFAULT_API, api_token: ApiToken = None
) -> None:
    """Print the priced OCPI 2.2.1 CDR an invoice was made from (a credit note's Credit CDR)."""
    typer.echo(_raw(api_url, "GET", f"/invoices/{invoice_number}/cdr").text)


FromDay = Annotated[str | None, typer.Option("--from", help="Stopped on or after this UTC day.")]
ToDay = Annotated[str | None, typer.Option("--to", help="Stopped before this day.")]


def _export(api_url: str, path: str, valid_from: str | None, valid_to: str | None) -> None:
    """Write an export to stdout as it arrives (the API streams it: any range fits)."""
    params = {k: v for k, v in (("from", valid_from), ("to", valid_to)) if v}
    url = f"{api_url.rstrip('/')}/api/v1{path}"
    try:
        with httpx.stream("GET", url, params=params, timeout=60, headers=_auth()) as response:
            if response.status_code >= 400:
                response.read()
                _fail(f"GET {path}: {_detail(response)}", EXIT_FAILURE)
            out = sys.stdout.buffer
            for chunk in response.iter_bytes():
                out.write(chunk)
            out.flush()
    except httpx.HTTPError as exc:
        _fail(
            f"cannot reach the ChargeLedger API at {api_url} ({exc}); start `chargeledger up`"
            " or point --api-url at it",
            EXIT_FAILURE,
        )


@invoices.command("cdrs")
def export_cdrs(
    valid_from: FromDay = None, valid_to: ToDay = None, api_url: ApiUrl = DEFAULT_API
) -> None:
    """Print every CDR (and Credit CDR) as an OCPI 2.2.1 JSON array."""
    _export(api_url, "/cdrs", valid_from, valid_to)


@invoices.command("export")
def export_invoices(
    valid_from: FromDay = None, valid_to: ToDay = None, api_url: ApiUrl = DEFAULT_API
) -> None:
    """Print every invoice and credit note line as CSV (columns: docs/exports.md)."""
    _export(api_url, "/invoices.csv", valid_from, valid_to)


HELD_COLUMNS = ["session_id", "revision", "station_id", "energy_wh", "reason"]
Reviewer = Annotated[str, typer.Option(help="Who decides (kept on the log).")]
Note = Annotated[str, typer.Option(help="Why (kept on the log).")]
Revision = Annotated[
    int | None, typer.Option(help="The revision looked at; refused if another is held now.")
]


@invoices.command("held")
def held_sessions(
    api_url: ApiUrl = DEFAULT_API,
    api_token: ApiToken = None,
    as_json: AsJson = False,
    page_size: PageSize = PAGE_SIZE,
) -> None:
    """List completed sessions held back from invoicing, with why."""
    _print(_all(api_url, "/invoices/held", page_size), HELD_COLUMNS, as_json)


def _decide(
    api_url: str, session_id: str, decision: str, reviewer: str, note: str, revision: int | None
) -> None:
    body = {"reviewer": reviewer, "note": note, "revision": revision}
    path = f"/invoices/held/{quote(session_id, safe='')}/{decision}"
    result = _request(api_url, "POST", path, body)
    typer.echo(f"{decision} of {result['session_id']} revision {result['revision']}: on the log")


@invoices.command("release")
def release_session(
    session_id: str,
    reviewer: Reviewer,
    note: Note = "",
    revision: Revision = None,
    api_url: ApiUrl = DEFAULT_API,
    api_token: ApiToken = None,
) -> None:
    """Invoice a held session as it is, after review."""
    _decide(api_url, session_id, "release", reviewer, note, revision)


@invoices.command("dismiss")
def dismiss_session(
    session_id: str,
    reviewer: Reviewer,
    note: Note = "",
    revision: Revision = None,
    api_url: ApiUrl = DEFAULT_API,
    api_token: ApiToken = None,
) -> None:
    """Never invoice a held session (a test, a fault)."""
    _decide(api_url, session_id, "dismiss", reviewer, note, revision)
