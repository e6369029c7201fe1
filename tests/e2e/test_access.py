"""Access control over real HTTP against `chargeledger up`: users and API tokens made with the
CLI on the database directly, and every operation of the OpenAPI document checked for its 401,
the roles it allows and the roles it refuses, so that no endpoint can be forgotten."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from chargeledger.access.roles import ROLES
from chargeledger.api.rights import OPEN, RIGHTS
from chargeledger.core import db
from tests.support import Product

CLI = [sys.executable, "-m", "chargeledger.cli"]
USER_ADD = ["users", "add", "--password-stdin"]
PASSWORD = "correct-horse-battery-staple"


def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], input=stdin, capture_output=True, text=True, timeout=120, check=False
    )


def token(data_dir: Path, name: str, role: str, *extra: str) -> str:
    made = cli(
        "api-tokens", "create", "--name", name, "--role", role, "--data-dir", str(data_dir), *extra
    )
    assert made.returncode == 0, made.stderr
    last = made.stdout.strip().splitlines()[-1]
    assert last.startswith("clt_") and " " not in last, made.stdout
    return last


def concrete(path: str) -> str:
    """A path of the template with every parameter filled in."""
    return path.replace("{", "").replace("}", "") if "{" in path else path


@pytest.fixture(scope="module")
def product(tmp_path_factory: pytest.TempPathFactory) -> Any:
    data_dir = tmp_path_factory.mktemp("access") / "data"
    tokens = {role: token(data_dir, f"t-{role}", role) for role in ROLES}
    for name, role in (("alice", "finance"), ("victor", "viewer")):
        made = cli(*USER_ADD, name, "--role", role, "--data-dir", str(data_dir), stdin=PASSWORD)
        assert made.returncode == 0, made.stderr
    running = Product(data_dir, api_auth=True).start().follow_output()
    yield running, tokens
    running.kill()


def test_every_operation_refuses_without_a_token_and_by_role(product: Any) -> None:
    running, tokens = product
    document = httpx.get(f"{running.api}/openapi.json", timeout=10).json()
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    checked = 0
    with httpx.Client(base_url=running.api, timeout=30) as client:
        for path, operations in document["paths"].items():
            for method, operation in operations.items():
                key = (method.upper(), path)
                url = concrete(path)
                if key in OPEN or path == "/metrics":
                    assert operation["security"] == []
                    assert client.request(method, url).status_code not in (401, 403), key
                    continue
                assert key in RIGHTS, f"{key} has no right in api/rights.py"
                assert operation["security"] == [{"bearerAuth": []}], key
                allowed = operation["x-roles"]
                assert "admin" in allowed and set(allowed) <= set(ROLES)
                body: dict[str, object] | None = {} if method in ("post", "put", "patch") else None
                anonymous = client.request(method, url, json=body)
                assert anonymous.status_code == 401, (key, anonymous.text)
                assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
                for role in ROLES:
                    answer = client.request(
                        method, url, json=body, headers={"Authorization": f"Bearer {tokens[role]}"}
                    )
                    if role in allowed:
                        assert answer.status_code not in (401, 403), (key, role, answer.text)
                    else:
                        assert answer.status_code == 403, (key, role, answer.text)
                        assert f"has the role {role}" in answer.json()["detail"]
                assert any(role not in allowed for role in ROLES) or operation["x-right"] == "read"
                checked += 1
    assert checked >= len(RIGHTS)


def test_writes_need_their_role_and_tokens_can_be_revoked_or_expire(product: Any) -> None:
    running, tokens = product
    data_dir = running.data_dir
    station = {"station_id": "ACCESS-1"}
    url = f"{running.api}/api/v1/stations"
    viewer = {"Authorization": f"Bearer {tokens['viewer']}"}
    assert httpx.post(url, json=station, headers=viewer, timeout=10).status_code == 403
    assert httpx.get(f"{url}/ACCESS-1", headers=viewer, timeout=10).status_code == 404  # not made
    operator = {"Authorization": f"Bearer {tokens['operator']}"}
    assert httpx.post(url, json=station, headers=operator, timeout=10).status_code == 201
    finance = {"Authorization": f"Bearer {tokens['finance']}"}
    assert (
        httpx.get(f"{running.api}/api/v1/invoices.csv", headers=finance, timeout=10).status_code
        == 200
    )
    assert (
        httpx.get(f"{running.api}/api/v1/invoices.csv", headers=operator, timeout=10).status_code
        == 403
    )

    short = token(data_dir, "short-lived", "viewer", "--expires", "2099-12-31T00:00:00")
    listed = cli("api-tokens", "list", "--json", "--data-dir", str(data_dir))
    assert '"expires_at": "2099-12-31 00:00:00+00:00"' in listed.stdout, listed.stdout
    assert (
        httpx.get(url, headers={"Authorization": f"Bearer {short}"}, timeout=10).status_code == 200
    )
    # Its expiry comes (set in the database: the CLI refuses a time that has passed).
    with psycopg.connect(db.start_embedded(data_dir), autocommit=True) as conn:
        conn.execute(
            "UPDATE api_tokens SET expires_at = now() - interval '1 second'"
            " WHERE name = 'short-lived'"
        )
    assert (
        httpx.get(url, headers={"Authorization": f"Bearer {short}"}, timeout=10).status_code == 401
    )

    revoked = cli("api-tokens", "revoke", "t-operator", "--data-dir", str(data_dir))
    assert revoked.returncode == 0, revoked.stderr
    assert httpx.get(url, headers=operator, timeout=10).status_code == 401
    listed = cli("api-tokens", "list", "--data-dir", str(data_dir))
    assert "t-operator" in listed.stdout and "clt_" not in listed.stdout  # never the token


def test_the_cli_commands_of_a_running_api_take_a_token(product: Any) -> None:
    running, tokens = product
    api = ["--api-url", running.api]
    refused = cli("stations", "list", *api)
    assert refused.returncode == 1
    assert "--api-token or CHARGELEDGER_API_TOKEN" in refused.stderr
    listed = cli("stations", "list", *api, "--api-token", tokens["viewer"])
    assert listed.returncode == 0, listed.stderr
    added = subprocess.run(
        [*CLI, "tokens", "add", "ACCESS-TAG", *api],
        capture_output=True,
        text=True,
        timeout=60,
        env={**__import__("os").environ, "CHARGELEDGER_API_TOKEN": tokens["admin"]},
        check=False,
    )
    assert added.returncode == 0, added.stderr


def test_users_are_managed_on_the_database_and_never_show_a_password(tmp_path: Path) -> None:
    data_dir = str(tmp_path / "data")
    made = cli(
        "users",
        "add",
        "alice",
        "--role",
        "finance",
        "--password-stdin",
        "--data-dir",
        data_dir,
        stdin="a-long-password-1\n",
    )
    assert made.returncode == 0, made.stderr
    assert (
        cli(
            "users",
            "add",
            "alice",
            "--role",
            "viewer",
            "--password-stdin",
            "--data-dir",
            data_dir,
            stdin="a-long-password-2\n",
        ).returncode
        == 2
    )
    short = cli(
        "users",
        "add",
        "bob",
        "--role",
        "viewer",
        "--password-stdin",
        "--data-dir",
        data_dir,
        stdin="short\n",
    )
    assert short.returncode == 2 and "12 to 128 characters" in short.stderr
    wrong_role = cli(
        "users",
        "add",
        "carol",
        "--role",
        "boss",
        "--password-stdin",
        "--data-dir",
        data_dir,
        stdin="a-long-password-3\n",
    )
    assert wrong_role.returncode == 2 and "role must be one of" in wrong_role.stderr
    assert (
        cli("users", "set-role", "alice", "--role", "admin", "--data-dir", data_dir).returncode == 0
    )
    assert cli("users", "disable", "alice", "--data-dir", data_dir).returncode == 0
    assert (
        cli(
            "users",
            "set-password",
            "alice",
            "--password-stdin",
            "--data-dir",
            data_dir,
            stdin="another-password-4\n",
        ).returncode
        == 0
    )
    listed = cli("users", "list", "--json", "--data-dir", data_dir)
    assert listed.returncode == 0, listed.stderr
    assert '"role": "admin"' in listed.stdout and '"enabled": false' in listed.stdout
    assert "password" not in listed.stdout and "scrypt" not in listed.stdout
    assert cli("users", "enable", "nobody", "--data-dir", data_dir).returncode == 2


def test_up_says_how_to_make_the_first_admin_and_warns_without_checking(tmp_path: Path) -> None:
    try:
        checked = Product(tmp_path / "a", api_auth=True).start()
        checked.kill()
        assert (
            "No user yet: make the first admin with `chargeledger users add NAME --role admin"
            in checked.output
        )
        open_api = Product(tmp_path / "b").start()  # the tests' default: API_AUTH=off
        open_api.kill()
        assert "WARNING: the HTTP API checks no API token" in open_api.output
    finally:  # killed outright, `up` leaves its embedded PostgreSQL running
        db.stop_embedded(tmp_path / "a")
        db.stop_embedded(tmp_path / "b")


def log_in(running: Product, name: str, password: str = PASSWORD) -> httpx.Response:
    return httpx.post(
        f"{running.api}/api/v1/session", json={"name": name, "password": password}, timeout=30
    )


def test_the_console_logs_in_with_a_cookie_and_needs_the_csrf_token_to_change_anything(
    product: Any,
) -> None:
    running, _ = product
    assert log_in(running, "alice", "not-her-password").status_code == 401
    answer = log_in(running, "alice")
    assert answer.status_code == 200, answer.text
    cookie = answer.headers["set-cookie"]
    for flag in ("HttpOnly", "Secure", "SameSite=strict", "Path=/"):
        assert flag.lower() in cookie.lower(), cookie
    session_id = cookie.split(";")[0].split("=", 1)[1]
    csrf = answer.json()["csrf_token"]
    assert answer.json()["role"] == "finance"
    with_cookie = {"Cookie": f"chargeledger_session={session_id}"}

    me = httpx.get(f"{running.api}/api/v1/session", headers=with_cookie, timeout=10)
    assert me.json()["name"] == "alice" and me.json()["csrf_token"] == csrf
    csv = httpx.get(f"{running.api}/api/v1/invoices.csv", headers=with_cookie, timeout=10)
    assert csv.status_code == 200
    release = f"{running.api}/api/v1/invoices/held/no-such-session/release"
    forged = httpx.post(release, json={"note": "x"}, headers=with_cookie, timeout=10)
    assert forged.status_code == 403 and "CSRF" in forged.json()["detail"]
    wrong = httpx.post(
        release, json={"note": "x"}, headers={**with_cookie, "X-CSRF-Token": "x"}, timeout=10
    )
    assert wrong.status_code == 403
    made = httpx.post(
        release, json={"note": "x"}, headers={**with_cookie, "X-CSRF-Token": csrf}, timeout=10
    )
    assert made.status_code not in (401, 403), made.text
    command = f"{running.api}/api/v1/stations/CP-1/commands"
    refused = httpx.post(
        command, json={}, headers={**with_cookie, "X-CSRF-Token": csrf}, timeout=10
    )
    assert refused.status_code == 403 and "role finance" in refused.json()["detail"]

    out = httpx.delete(
        f"{running.api}/api/v1/session", headers={**with_cookie, "X-CSRF-Token": csrf}, timeout=10
    )
    assert out.status_code == 204
    assert (
        httpx.get(f"{running.api}/api/v1/session", headers=with_cookie, timeout=10).status_code
        == 401
    )


def test_a_disabled_users_sessions_end(product: Any) -> None:
    running, _ = product
    answer = log_in(running, "victor")
    assert answer.status_code == 200
    session_id = answer.headers["set-cookie"].split(";")[0].split("=", 1)[1]
    with_cookie = {"Cookie": f"chargeledger_session={session_id}"}
    assert (
        httpx.get(f"{running.api}/api/v1/stations", headers=with_cookie, timeout=10).status_code
        == 200
    )
    assert cli("users", "disable", "victor", "--data-dir", str(running.data_dir)).returncode == 0
    assert (
        httpx.get(f"{running.api}/api/v1/stations", headers=with_cookie, timeout=10).status_code
        == 401
    )
    assert log_in(running, "victor").status_code == 401


def test_logins_are_rate_limited_and_tell_nothing_about_names(product: Any) -> None:
    running, _ = product
    for _ in range(5):
        assert log_in(running, "ghost", "guess-number-one").status_code == 401
    limited = log_in(running, "ghost", "guess-number-one")
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    # Another name from the same address is not held back by these failures.
    assert log_in(running, "alice", "wrong-but-unlimited").status_code == 401


def test_every_answer_carries_the_security_headers(product: Any) -> None:
    running, tokens = product
    for path, headers in (
        ("/healthz", {}),
        ("/api/v1/stations", {"Authorization": f"Bearer {tokens['viewer']}"}),
        ("/api/v1/stations", {}),
    ):
        answer = httpx.get(f"{running.api}{path}", headers=headers, timeout=10)
        assert answer.headers["x-content-type-options"] == "nosniff", path
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["referrer-policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
        if path.startswith("/api/"):
            assert answer.headers["cache-control"] == "no-store"


def test_changes_carry_their_actor_into_the_audit_trail_which_a_replay_rebuilds(
    product: Any,
) -> None:
    running, tokens = product
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    api = f"{running.api}/api/v1"
    assert (
        httpx.post(
            f"{api}/stations", json={"station_id": "AUDIT-1"}, headers=admin, timeout=10
        ).status_code
        == 201
    )
    assert (
        httpx.put(
            f"{api}/stations/AUDIT-1/time-zone",
            json={"time_zone": "Europe/Berlin"},
            headers=admin,
            timeout=10,
        ).status_code
        == 200
    )
    assert (
        httpx.post(
            f"{api}/tokens", json={"id_token": "AUDIT-TAG"}, headers=admin, timeout=10
        ).status_code
        == 201
    )
    answer = log_in(running, "alice")
    session_id = answer.headers["set-cookie"].split(";")[0].split("=", 1)[1]
    csrf = answer.json()["csrf_token"]
    tariff = {
        "id": "AUDIT-T",
        "currency": "EUR",
        "elements": [{"price_components": [{"type": "ENERGY", "price": "0.30", "step_size": 1}]}],
        "last_updated": "2026-01-01T00:00:00Z",
        "country_code": "DE",
        "party_id": "CLG",
    }
    put = httpx.put(
        f"{api}/tariffs/AUDIT-T",
        json=tariff,
        headers={"Cookie": f"chargeledger_session={session_id}", "X-CSRF-Token": csrf},
        timeout=10,
    )
    assert put.status_code == 201, put.text

    def trail(actor: str) -> list[dict[str, Any]]:
        """The actor's changes made by this test (the module's other tests made some too)."""
        found = httpx.get(f"{api}/audit", params={"actor": actor}, headers=admin, timeout=10)
        assert found.status_code == 200, found.text
        return [e for e in found.json() if e["subject"].startswith("AUDIT")]

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(trail("token:t-admin")) < 3:
        time.sleep(0.2)
    mine = trail("token:t-admin")
    assert [(e["kind"], e["subject"]) for e in mine] == [
        ("station", "AUDIT-1"),
        ("time-zone", "AUDIT-1"),
        ("id-token", "AUDIT-TAG"),
    ]
    assert mine[1]["change"]["time_zone"] == "Europe/Berlin"
    while time.monotonic() < deadline and not trail("user:alice"):
        time.sleep(0.2)
    assert [(e["kind"], e["subject"]) for e in trail("user:alice")] == [("tariff", "AUDIT-T")]
    viewer = {"Authorization": f"Bearer {tokens['viewer']}"}
    assert httpx.get(f"{api}/audit", headers=viewer, timeout=10).status_code == 403
    finance = {"Authorization": f"Bearer {tokens['finance']}"}
    assert httpx.get(f"{api}/audit", headers=finance, timeout=10).status_code == 200

    replayed = cli("replay", "--verify", "--data-dir", str(running.data_dir))
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr  # 1 if any differs
