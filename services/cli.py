"""The ``chargeledger`` command. Thin: parse options, build Settings, hand over to bootstrap."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from pythonjsonlogger.json import JsonFormatter

from . import access_cli, admin_cli, ocmf_cli
from .core.db import DatabaseError
from .core.log import LogError, LogSettingsError
from .core.settings import Settings
from .gateway.certificates import CaError
from .gateway.server import TlsError
from .invoicing.tariff import TariffError

app = typer.Typer(
    help="ChargeLedger: event-sourced transaction and billing ledger for EV charging.",
    no_args_is_help=True,
    add_completion=False,
)

EXIT_USAGE = 2
EXIT_FAILURE = 1

app.add_typer(admin_cli.stations, name="stations")
app.add_typer(admin_cli.tokens, name="tokens")
app.add_typer(admin_cli.tariffs, name="tariffs")
app.add_typer(admin_cli.invoices, name="invoices")
app.command("command")(admin_cli.send_command)
app.add_typer(ocmf_cli.ocmf, name="ocmf")
app.add_typer(access_cli.users, name="users")
app.add_typer(access_cli.api_tokens, name="api-tokens")


@app.callback()
def _root() -> None:
    """ChargeLedger: event-sourced transaction and billing ledger for EV charging."""


def fail(message: str, code: int) -> None:
    typer.echo(f"chargeledger: error: {message}", err=True)
    raise typer.Exit(code)


def _settings(**given: Any) -> Settings:
    try:
        return Settings(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        fail(f"{where}: {message}" if where else message, EXIT_USAGE)
        raise AssertionError from exc  # unreachable: fail() raises


DataDir = Annotated[
    Path | None,
    typer.Option(envvar="CHARGELEDGER_DATA_DIR", help="Data directory (default: .chargeledger)"),
]
OcppPort = Annotated[
    int | None,
    typer.Option(envvar="CHARGELEDGER_OCPP_PORT", help="OCPP WebSocket port (default: 9000)"),
]
OcppHost = Annotated[
    str | None,
    typer.Option(
        envvar="CHARGELEDGER_OCPP_HOST",
        help="Address the OCPP port listens on (default: 0.0.0.0, all interfaces)",
    ),
]
HttpHost = Annotated[
    str | None,
    typer.Option(
        envvar="CHARGELEDGER_HTTP_HOST",
        help="Address the HTTP API listens on (default: 127.0.0.1, this machine only)",
    ),
]
HttpPort = Annotated[
    int | None,
    typer.Option(envvar="CHARGELEDGER_HTTP_PORT", help="HTTP API port (default: 8080)"),
]
Tariff = Annotated[
    Path | None,
    typer.Option(
        envvar="CHARGELEDGER_TARIFF",
        help="OCPI 2.2.1 Tariff JSON used as the default tariff (default: bundled sample)",
    ),
]
Log = Annotated[
    str | None,
    typer.Option(
        envvar="CHARGELEDGER_LOG",
        help="Event log: postgres or kafka://HOST:PORT (default: postgres)",
    ),
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        envvar="CHARGELEDGER_DATABASE_URL",
        help="PostgreSQL DSN (default: embedded server under --data-dir)",
    ),
]
UnknownStations = Annotated[
    str | None,
    typer.Option(
        envvar="CHARGELEDGER_UNKNOWN_STATIONS",
        help="BootNotification answer for stations not in the registry: accept, pending or "
        "reject (default: accept, for trials)",
    ),
]
UnknownTokens = Annotated[
    str | None,
    typer.Option(
        envvar="CHARGELEDGER_UNKNOWN_TOKENS",
        help="Id tokens not in the registry: accept or reject (default: accept, for trials)",
    ),
]
SecurityProfile = Annotated[
    int | None,
    typer.Option(
        envvar="CHARGELEDGER_SECURITY_PROFILE",
        help="OCPP security profile: 0 none, 1 Basic auth, 2 TLS + Basic auth, 3 mutual TLS "
        "(default: 0)",
    ),
]
TlsCert = Annotated[
    Path | None,
    typer.Option(envvar="CHARGELEDGER_TLS_CERT_FILE", help="Server certificate, PEM (profile 2-3)"),
]
TlsKey = Annotated[
    Path | None,
    typer.Option(envvar="CHARGELEDGER_TLS_KEY_FILE", help="Server private key, PEM (profiles 2-3)"),
]
TlsClientCa = Annotated[
    Path | None,
    typer.Option(
        envvar="CHARGELEDGER_TLS_CLIENT_CA_FILE",
        help="CA certificate that signs station certificates, PEM (profile 3)",
    ),
]
CsmsCaCert = Annotated[
    Path | None,
    typer.Option(
        envvar="CHARGELEDGER_CSMS_CA_CERT_FILE",
        help="CA certificate (PEM) that signs the CSRs stations send (SignCertificate); without"
        " it SignCertificate is Rejected",
    ),
]
CsmsCaKey = Annotated[
    Path | None,
    typer.Option(
        envvar="CHARGELEDGER_CSMS_CA_KEY_FILE", help="That CA's private key (PEM, unencrypted)"
    ),
]
KafkaReplicationFactor = Annotated[
    int | None,
    typer.Option(
        envvar="CHARGELEDGER_KAFKA_REPLICATION_FACTOR",
        help="Replicas of each Kafka topic created, at most the brokers (default: 1)",
    ),
]
KafkaMinInsyncReplicas = Annotated[
    int | None,
    typer.Option(
        envvar="CHARGELEDGER_KAFKA_MIN_INSYNC_REPLICAS",
        help="min.insync.replicas of each Kafka topic created (default: the broker's)",
    ),
]
KafkaTopicPrefix = Annotated[
    str | None,
    typer.Option(
        envvar="CHARGELEDGER_KAFKA_TOPIC_PREFIX",
        help="Before every Kafka topic and consumer group name, so that deployments share a"
        " cluster (default: none)",
    ),
]
ProcessorWorkers = Annotated[
    int | None,
    typer.Option(
        envvar="CHARGELEDGER_PROCESSOR_WORKERS",
        help="Worker processes for the processors, each on its share of the partitions"
        " (default: one per core; 0: in this process)",
    ),
]
NoApiAuth = Annotated[
    bool,
    typer.Option(
        "--no-api-auth",
        help="Check no API token (trials and tests only: anyone reaching the HTTP port may do"
        " anything). Also CHARGELEDGER_API_AUTH=off.",
    ),
]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Log more.")]
LogFormat = Annotated[
    str,
    typer.Option(
        envvar="CHARGELEDGER_LOG_FORMAT",
        help="Process log lines as 'text' or 'json' (one object a line, with station_id and "
        "unique_id where they apply).",
    ),
]


@app.command()
def up(
    data_dir: DataDir = None,
    ocpp_host: OcppHost = None,
    ocpp_port: OcppPort = None,
    http_host: HttpHost = None,
    http_port: HttpPort = None,
    tariff: Tariff = None,
    log: Log = None,
    database_url: DatabaseUrl = None,
    unknown_stations: UnknownStations = None,
    unknown_tokens: UnknownTokens = None,
    security_profile: SecurityProfile = None,
    tls_cert: TlsCert = None,
    tls_key: TlsKey = None,
    tls_client_ca: TlsClientCa = None,
    csms_ca_cert: CsmsCaCert = None,
    csms_ca_key: CsmsCaKey = None,
    kafka_replication_factor: KafkaReplicationFactor = None,
    kafka_min_insync_replicas: KafkaMinInsyncReplicas = None,
    kafka_topic_prefix: KafkaTopicPrefix = None,
    processor_workers: ProcessorWorkers = None,
    no_api_auth: NoApiAuth = False,
    verbose: Verbose = False,
    log_format: LogFormat = "text",
) -> None:
    """Run gateway, ledger, invoicing and HTTP API (the processors in worker processes)."""
    settings = _settings(
        data_dir=data_dir,
        ocpp_host=ocpp_host,
        ocpp_port=ocpp_port,
        http_host=http_host,
        http_port=http_port,
        tariff=tariff,
        log=log,
        database_url=database_url,
        unknown_stations=unknown_stations,
        unknown_tokens=unknown_tokens,
        security_profile=security_profile,
        tls_cert_file=tls_cert,
        tls_key_file=tls_key,
        tls_client_ca_file=tls_client_ca,
        csms_ca_cert_file=csms_ca_cert,
        csms_ca_key_file=csms_ca_key,
        kafka_replication_factor=kafka_replication_factor,
        kafka_min_insync_replicas=kafka_min_insync_replicas,
        kafka_topic_prefix=kafka_topic_prefix,
        api_auth=False if no_api_auth else None,
        processor_workers=processor_workers,
    )
    _serve(settings, verbose=verbose, log_format=log_format, with_processors=True)


@app.command()
def gateway(
    data_dir: DataDir = None,
    ocpp_host: OcppHost = None,
    ocpp_port: OcppPort = None,
    http_host: HttpHost = None,
    http_port: HttpPort = None,
    log: Log = None,
    database_url: DatabaseUrl = None,
    unknown_stations: UnknownStations = None,
    unknown_tokens: UnknownTokens = None,
    security_profile: SecurityProfile = None,
    tls_cert: TlsCert = None,
    tls_key: TlsKey = None,
    tls_client_ca: TlsClientCa = None,
    csms_ca_cert: CsmsCaCert = None,
    csms_ca_key: CsmsCaKey = None,
    kafka_replication_factor: KafkaReplicationFactor = None,
    kafka_min_insync_replicas: KafkaMinInsyncReplicas = None,
    kafka_topic_prefix: KafkaTopicPrefix = None,
    no_api_auth: NoApiAuth = False,
    verbose: Verbose = False,
    log_format: LogFormat = "text",
) -> None:
    """Run one more OCPP gateway (and its HTTP API), without ledger and invoicing.

    Gateways share nothing but the event log and PostgreSQL: run as many as needed, with the
    same --log and --database-url, next to one `chargeledger up`.
    """
    settings = _settings(
        data_dir=data_dir,
        ocpp_host=ocpp_host,
        ocpp_port=ocpp_port,
        http_host=http_host,
        http_port=http_port,
        log=log,
        database_url=database_url,
        unknown_stations=unknown_stations,
        unknown_tokens=unknown_tokens,
        security_profile=security_profile,
        tls_cert_file=tls_cert,
        tls_key_file=tls_key,
        tls_client_ca_file=tls_client_ca,
        csms_ca_cert_file=csms_ca_cert,
        csms_ca_key_file=csms_ca_key,
        kafka_replication_factor=kafka_replication_factor,
        kafka_min_insync_replicas=kafka_min_insync_replicas,
        kafka_topic_prefix=kafka_topic_prefix,
        api_auth=False if no_api_auth else None,
    )
    _serve(settings, verbose=verbose, log_format=log_format, with_processors=False)


@app.command()
def ledger(
    log: Log = None,
    database_url: DatabaseUrl = None,
    tariff: Tariff = None,
    kafka_replication_factor: KafkaReplicationFactor = None,
    kafka_min_insync_replicas: KafkaMinInsyncReplicas = None,
    kafka_topic_prefix: KafkaTopicPrefix = None,
    data_dir: DataDir = None,
    verbose: Verbose = False,
) -> None:
    """Run ledger and invoicing processors as faust-streaming agents over Kafka (scaled runtime).

    All `chargeledger ledger` workers with the same --log form one consumer group and share the
    partitions: run as many as there are partitions, next to `chargeledger gateway` processes.
    """
    settings = _settings(
        log=log,
        database_url=database_url,
        tariff=tariff,
        kafka_replication_factor=kafka_replication_factor,
        kafka_min_insync_replicas=kafka_min_insync_replicas,
        kafka_topic_prefix=kafka_topic_prefix,
        data_dir=data_dir,
    )
    _configure_logging(verbose, "text")
    from .bootstrap import run_faust_ledger

    try:
        run_faust_ledger(settings, loglevel="info" if verbose else "warning")
    except (ValueError, TariffError, LogSettingsError) as exc:
        fail(str(exc), EXIT_USAGE)
    except (DatabaseError, LogError) as exc:
        fail(str(exc), EXIT_FAILURE)


@app.command()
def price(
    tariff: Annotated[Path, typer.Option(help="OCPI 2.2.1 Tariff JSON.")],
    cdr: Annotated[
        Path,
        typer.Option(
            help="OCPI 2.2.1 CDR (start_date_time, end_date_time, charging_periods with "
            "dimensions ENERGY, TIME, PARKING_TIME, MIN/MAX_CURRENT, MIN/MAX_POWER, "
            "RESERVATION_TIME)."
        ),
    ],
    timezone: Annotated[
        str, typer.Option(help="The station's time zone, for time-of-day and day restrictions.")
    ] = "UTC",
) -> None:
    """Price a CDR with a tariff, without any service running; print the priced CDR as JSON."""
    from .invoicing.cdr_json import DocumentError, price_files

    try:
        typer.echo(price_files(tariff, cdr, timezone))
    except DocumentError as exc:
        fail(str(exc), EXIT_USAGE)


@app.command()
def replay(
    data_dir: DataDir = None,
    log: Log = None,
    database_url: DatabaseUrl = None,
    tariff: Tariff = None,
    kafka_topic_prefix: KafkaTopicPrefix = None,
    processor_workers: ProcessorWorkers = None,
    verify: Annotated[
        bool,
        typer.Option("--verify", help="Compare with the live projections; exit 1 if any differ."),
    ] = False,
    keep: Annotated[
        bool, typer.Option("--keep", help="Keep the rebuilt database after --verify.")
    ] = False,
) -> None:
    """Rebuild every projection from the log, from offset 0, into a fresh database."""
    settings = _settings(
        data_dir=data_dir,
        log=log,
        database_url=database_url,
        tariff=tariff,
        kafka_topic_prefix=kafka_topic_prefix,
        processor_workers=processor_workers,
    )
    _configure_logging(False, "text")
    from rich.console import Console

    from .replay import ReplayError
    from .replay import replay as run_replay

    try:
        code = asyncio.run(run_replay(settings, verify=verify, keep=keep, console=Console()))
    except (ReplayError, TariffError) as exc:
        fail(str(exc), EXIT_USAGE)
    except DatabaseError as exc:
        fail(str(exc), EXIT_FAILURE)
    raise typer.Exit(code)


def _configure_logging(verbose: bool, log_format: str) -> None:
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    elif log_format == "text":
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    else:
        fail(f"--log-format must be 'text' or 'json', not {log_format!r}", EXIT_USAGE)
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, handlers=[handler], force=True
    )


def _serve(settings: Settings, *, verbose: bool, log_format: str, with_processors: bool) -> None:
    _configure_logging(verbose, log_format)
    try:
        asyncio.run(_run(settings, with_processors))
    except (TariffError, TlsError, CaError, LogSettingsError) as exc:
        fail(str(exc), EXIT_USAGE)
    except (DatabaseError, LogError) as exc:
        fail(str(exc), EXIT_FAILURE)
    except OSError as exc:
        fail(f"cannot listen: {exc}; choose another --ocpp-port / --http-port", EXIT_FAILURE)


async def _run(settings: Settings, with_processors: bool) -> None:
    from .bootstrap import Product
    from .gateway.server import SUBPROTOCOLS

    product = Product(settings, with_processors=with_processors)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    started = False
    try:
        await product.start()
        started = True
        what = "ChargeLedger" if with_processors else "ChargeLedger gateway"
        print(f"{what} is up (event log: {product.log.name if product.log else '?'})")
        versions = ", ".join(SUBPROTOCOLS)
        scheme = "wss" if settings.tls_cert_file is not None else "ws"
        assert product.gateway is not None and product.http_address is not None
        for host, port in product.gateway.addresses:
            print(
                f"  OCPP:  {scheme}://{_url_host(host)}:{port}/ocpp/{{station_id}}  ({versions};"
                f" security profile {settings.security_profile}){_reach(host)}"
            )
        host, port = product.http_address
        print(f"  HTTP:  http://{_url_host(host)}:{port}/api/v1  (docs: /docs){_reach(host)}")
        print(f"  Console: http://{_url_host(host)}:{port}/")
        if not settings.api_auth:
            print(
                "  WARNING: the HTTP API checks no API token (--no-api-auth, or"
                " CHARGELEDGER_API_AUTH=off): whoever reaches its port may read and change"
                " everything. For trials and tests only."
            )
        elif not await product.has_users():
            where = (
                "--database-url ..." if settings.database_url else f"--data-dir {settings.data_dir}"
            )
            print(
                "  No user yet: make the first admin with"
                f" `chargeledger users add NAME --role admin {where}`, and API tokens with"
                f" `chargeledger api-tokens create --name NAME --role ROLE {where}`."
            )
        print("Stop with Ctrl-C.", flush=True)
        waiting = asyncio.create_task(product.wait())
        stopping = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        for task in (waiting, stopping):
            task.cancel()
        if waiting in done and not waiting.cancelled():
            waiting.result()
    finally:
        await product.stop()
        if started:  # a start that failed says why in one line, and nothing else
            print("ChargeLedger stopped.", file=sys.stderr, flush=True)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _reach(host: str) -> str:
    """Who can reach an address that is bound."""
    if host in ("0.0.0.0", "::"):
        return "  [all interfaces]"
    if host.startswith("127.") or host == "::1":
        return "  [this machine only]"
    return ""


def main() -> None:
    app()


if __name__ == "__main__":
    main()
