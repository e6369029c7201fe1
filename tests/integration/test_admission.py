"""Who may connect and what stations are told: registry, boot policy, tokens, security profiles.

All on real PostgreSQL, real WebSockets and real TLS with certificates made in the test.
"""

from __future__ import annotations

import asyncio
import base64
import json
import statistics
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from psycopg_pool import AsyncConnectionPool
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, InvalidStatus
from websockets.typing import Subprotocol

from chargeledger.core import codec
from chargeledger.core.events import STATIONS, TOKENS, StationRegistration, TokenRegistration
from chargeledger.core.log import PostgresLog
from chargeledger.gateway.admission import Admission, AuthenticationError
from chargeledger.gateway.authorization import TokenCache
from chargeledger.gateway.server import Gateway, tls_context
from chargeledger.registry.store import Registry, RegistryError
from tests.support import station_services
from tests.tls import Pki

NOW = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)
PASSWORD = "correct-horse-battery"
# A refused TLS handshake surfaces as an SSL error, a reset or an unreadable HTTP answer.
HANDSHAKE_FAILS = (OSError, EOFError, InvalidHandshake)
BOOT16 = {"chargePointVendor": "V", "chargePointModel": "M"}


def clock() -> datetime:
    return NOW


@pytest.fixture
async def log(pool: AsyncConnectionPool) -> AsyncIterator[PostgresLog]:
    log = PostgresLog(pool, partitions=2)
    await log.start()
    yield log
    await log.close()


@pytest.fixture
def registry(pool: AsyncConnectionPool, log: PostgresLog) -> Registry:
    return Registry(pool, log, clock)


GatewayFactory = Callable[..., Any]
E = TypeVar("E")


@pytest.fixture
async def start_gateway(
    pool: AsyncConnectionPool, log: PostgresLog
) -> AsyncIterator[GatewayFactory]:
    started: list[Gateway] = []

    async def start(**options: Any) -> Gateway:
        ssl_context = options.pop("ssl_context", None)
        gateway = Gateway(
            log,
            pool,
            station_services(pool, clock=clock, **options),
            gateway_id=f"gw-{len(started)}",
            ssl_context=ssl_context,
        )
        await gateway.start("127.0.0.1", 0)
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        await gateway.stop()


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def call(ws: ClientConnection, unique_id: str, action: str, payload: Any) -> list[Any]:
    await ws.send(json.dumps([2, unique_id, action, payload]))
    return list(json.loads(await ws.recv()))


def station_url(gateway: Gateway, station_id: str, scheme: str = "ws") -> str:
    return f"{scheme}://127.0.0.1:{gateway.port}/ocpp/{station_id}"


async def open_station(
    gateway: Gateway, station_id: str, version: str = "ocpp1.6", **options: Any
) -> ClientConnection:
    return await connect(station_url(gateway, station_id), subprotocols=[version], **options)  # type: ignore[list-item]


# Registration and BootNotification


async def test_nothing_but_boot_is_accepted_before_the_station_is_accepted(
    start_gateway: GatewayFactory,
) -> None:
    gateway = await start_gateway()
    async with await open_station(gateway, "CP-NEW") as ws:
        refused = await call(ws, "1", "Heartbeat", {})
        assert refused[:3] == [4, "1", "SecurityError"]
        assert "BootNotification first" in refused[3]
        # A station that never booted here (say, it booted before an upgrade and only
        # reconnected) is asked for its BootNotification, once per connection.
        trigger = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert trigger[0] == 2 and trigger[2:] == [
            "TriggerMessage",
            {"requestedMessage": "BootNotification"},
        ]
        await ws.send(json.dumps([3, trigger[1], {"status": "Accepted"}]))
        assert (await call(ws, "1b", "Heartbeat", {}))[:3] == [4, "1b", "SecurityError"]
        boot = await call(ws, "2", "BootNotification", BOOT16)
        assert boot[2]["status"] == "Accepted" and boot[2]["interval"] == 300
        assert (await call(ws, "3", "Heartbeat", {}))[0] == 3
    # A station that was accepted may reconnect without booting again (network loss).
    async with await open_station(gateway, "CP-NEW") as ws:
        assert (await call(ws, "4", "Heartbeat", {}))[0] == 3


async def test_pending_until_the_operator_registers_the_station(
    start_gateway: GatewayFactory, registry: Registry
) -> None:
    gateway = await start_gateway(unknown_stations="pending")
    async with await open_station(gateway, "CP-P", "ocpp2.0.1") as ws:
        boot = await call(
            ws,
            "1",
            "BootNotification",
            {"reason": "PowerUp", "chargingStation": {"model": "M", "vendorName": "V"}},
        )
        assert (boot[2]["status"], boot[2]["interval"]) == ("Pending", 60)
        refused = await call(
            ws,
            "2",
            "StatusNotification",
            {
                "timestamp": "2026-09-01T12:00:00Z",
                "connectorStatus": "Available",
                "evseId": 1,
                "connectorId": 1,
            },
        )
        assert refused[:3] == [4, "2", "SecurityError"]
        assert "Pending" in refused[3]
        await registry.add_station("CP-P")
        boot = await call(
            ws,
            "3",
            "BootNotification",
            {"reason": "PowerUp", "chargingStation": {"model": "M", "vendorName": "V"}},
        )
        assert boot[2]["status"] == "Accepted"
        assert (await call(ws, "4", "Heartbeat", {}))[0] == 3


async def test_unknown_stations_rejected_and_disabled_stations_rejected(
    start_gateway: GatewayFactory, registry: Registry
) -> None:
    gateway = await start_gateway(unknown_stations="reject")
    async with await open_station(gateway, "CP-R") as ws:
        assert (await call(ws, "1", "BootNotification", BOOT16))[2]["status"] == "Rejected"
        assert (await call(ws, "2", "Heartbeat", {}))[:3] == [4, "2", "SecurityError"]

    await registry.add_station("CP-D")
    async with await open_station(gateway, "CP-D") as ws:
        assert (await call(ws, "1", "BootNotification", BOOT16))[2]["status"] == "Accepted"
    await registry.update_station("CP-D", enabled=False)
    # Disabling takes effect on the next connection, even without a new boot.
    async with await open_station(gateway, "CP-D") as ws:
        assert (await call(ws, "2", "Heartbeat", {}))[:3] == [4, "2", "SecurityError"]
        assert (await call(ws, "3", "BootNotification", BOOT16))[2]["status"] == "Rejected"


async def logged(log: PostgresLog, stream: str, kind: type[E]) -> list[E]:
    """Every event on ``stream``, decoded; each must be a ``kind``."""
    events = [codec.decode(e.value) for p in range(2) for e in await log.read(stream, p, 0, 100)]
    assert all(isinstance(event, kind) for event in events), events
    return [event for event in events if isinstance(event, kind)]


async def test_registrations_are_on_the_log_without_secrets(
    registry: Registry, log: PostgresLog
) -> None:
    await registry.add_station("CP-LOG", password=PASSWORD)
    await registry.update_station("CP-LOG", enabled=False)
    await registry.add_token("04AABB", status="Accepted", account_id="ACC-1")
    await registry.update_token("04aabb", status="Blocked")

    stations = await logged(log, STATIONS, StationRegistration)
    tokens = await logged(log, TOKENS, TokenRegistration)
    assert [(s.revision, s.enabled, s.has_password) for s in stations] == [
        (1, True, True),
        (2, False, True),
    ]
    assert [(t.id_token, t.revision, t.status, t.account_id) for t in tokens] == [
        ("04AABB", 1, "Accepted", "ACC-1"),
        ("04AABB", 2, "Blocked", "ACC-1"),
    ]
    raw = b"".join([e.value for p in range(2) for e in await log.read(STATIONS, p, 0, 100)])
    stored = await registry.station("CP-LOG")
    assert stored is not None and stored.password_hash is not None
    assert PASSWORD.encode() not in raw and stored.password_hash.encode() not in raw


async def test_registry_refuses_bad_input_with_reasons(registry: Registry) -> None:
    with pytest.raises(RegistryError, match="16 to 40 characters") as short:
        await registry.add_station("CP-S", password="short")
    assert short.value.status == 422
    await registry.add_station("CP-S")
    with pytest.raises(RegistryError, match="already registered") as twice:
        await registry.add_station("CP-S")
    assert twice.value.status == 409
    with pytest.raises(RegistryError, match="printable") as slash:
        await registry.add_station("CP/1")
    assert slash.value.status == 422
    with pytest.raises(RegistryError, match="no station") as missing:
        await registry.update_station("CP-NONE", enabled=False)
    assert missing.value.status == 404
    with pytest.raises(RegistryError, match="status 'Maybe'"):
        await registry.add_token("T1", status="Maybe")


# Id tokens


async def test_tokens_are_answered_with_their_registered_status(
    start_gateway: GatewayFactory, registry: Registry
) -> None:
    await registry.add_token("GOOD", group_id="FLEET", expires_at=NOW + timedelta(days=30))
    await registry.add_token("BLOCKED", status="Blocked")
    await registry.add_token("OLD", expires_at=NOW - timedelta(days=1))
    gateway = await start_gateway(unknown_tokens="reject")
    async with await open_station(gateway, "CP-T") as ws:
        await call(ws, "b", "BootNotification", BOOT16)

        async def authorize(tag: str) -> dict[str, Any]:
            answer = await call(ws, tag, "Authorize", {"idTag": tag})
            return dict(answer[2]["idTagInfo"])

        assert await authorize("good") == {
            "status": "Accepted",
            "parentIdTag": "FLEET",
            "expiryDate": "2026-10-01T12:00:00.000Z",
        }
        assert (await authorize("BLOCKED"))["status"] == "Blocked"
        assert (await authorize("OLD"))["status"] == "Expired"
        assert (await authorize("NOBODY"))["status"] == "Invalid"
        start = await call(
            ws,
            "s",
            "StartTransaction",
            {
                "connectorId": 1,
                "idTag": "BLOCKED",
                "meterStart": 0,
                "timestamp": "2026-09-01T12:00:00Z",
            },
        )
        # The station may already be charging: it gets a transaction id to report on.
        assert start[2]["idTagInfo"]["status"] == "Blocked"
        assert isinstance(start[2]["transactionId"], int)

    async with await open_station(gateway, "CP-T2", "ocpp2.0.1") as ws:
        await call(
            ws,
            "b",
            "BootNotification",
            {"reason": "PowerUp", "chargingStation": {"model": "M", "vendorName": "V"}},
        )
        answer = await call(
            ws, "a", "Authorize", {"idToken": {"idToken": "NOBODY", "type": "ISO14443"}}
        )
        assert answer[2]["idTokenInfo"] == {"status": "Unknown"}
        answer = await call(
            ws, "g", "Authorize", {"idToken": {"idToken": "GOOD", "type": "ISO14443"}}
        )
        assert answer[2]["idTokenInfo"] == {
            "status": "Accepted",
            "cacheExpiryDateTime": "2026-10-01T12:00:00.000Z",
            "groupIdToken": {"idToken": "FLEET", "type": "Central"},
        }


async def test_gateways_see_a_blocked_token_once_their_cache_expires(
    pool: AsyncConnectionPool, registry: Registry
) -> None:
    now_s = [0.0]
    cache = TokenCache(
        pool, ttl_s=30, unknown_tokens="accept", clock=clock, monotonic=lambda: now_s[0]
    )
    await registry.add_token("CARD")
    assert (await cache.verdict("CARD")).status == "Accepted"
    await registry.update_token("CARD", status="Blocked")
    now_s[0] = 29.0
    assert (await cache.verdict("CARD")).status == "Accepted"
    now_s[0] = 30.5
    assert (await cache.verdict("CARD")).status == "Blocked"


async def test_tokens_match_whatever_their_case_as_the_registry_folds_it(
    pool: AsyncConnectionPool, registry: Registry
) -> None:
    cache = TokenCache(pool, ttl_s=30, unknown_tokens="reject", clock=clock)
    await registry.add_token("kard-04A1")
    await registry.add_token("iard-04A1")
    assert (await cache.verdict("KARD-04a1")).status == "Accepted"
    assert (await cache.verdict("KARD-04A2")).status == "Unknown"
    # Beyond ASCII, the gateway folds case exactly as the registry does (in PostgreSQL): a
    # token is the registered one for both, or for neither.
    for sent in ("\u212aARD-04A1", "\u0130ARD-04A1", "KARD-04\u0391\u0031", "ǨARD-04A1"):
        in_registry = await registry.token(sent) is not None
        assert ((await cache.verdict(sent)).status == "Accepted") == in_registry


# Security profiles


async def test_profile_1_basic_auth_binds_the_password_to_the_station(
    start_gateway: GatewayFactory, registry: Registry
) -> None:
    await registry.add_station("CP-A", password=PASSWORD)
    await registry.add_station("CP-B", password="another-password-123")
    await registry.add_station("CP-C")  # no password
    gateway = await start_gateway(security_profile=1)

    async def refused(station_id: str, headers: dict[str, str] | None) -> str:
        with pytest.raises(InvalidStatus) as error:
            await open_station(gateway, station_id, additional_headers=headers)
        assert error.value.response.status_code == 401
        return error.value.response.body.decode()

    assert "must authenticate" in await refused("CP-A", None)
    wrong = await refused("CP-A", basic("CP-A", "not-the-password-xx"))
    assert wrong == "wrong user name or password for station 'CP-A'\n"
    # CP-B's own credentials do not make it CP-A.
    assert "not the station id" in await refused("CP-A", basic("CP-B", "another-password-123"))
    # Whether a station has a password, or is registered at all, is not told to the client.
    assert await refused("CP-C", basic("CP-C", PASSWORD)) == wrong.replace("CP-A", "CP-C")
    unknown = await refused("CP-UNKNOWN", basic("CP-UNKNOWN", PASSWORD))
    assert unknown == wrong.replace("CP-A", "CP-UNKNOWN")
    async with await open_station(
        gateway, "CP-A", additional_headers=basic("CP-A", PASSWORD)
    ) as ws:
        assert (await call(ws, "1", "BootNotification", BOOT16))[2]["status"] == "Accepted"


async def test_a_registered_password_is_required_even_without_a_profile(
    start_gateway: GatewayFactory, registry: Registry
) -> None:
    await registry.add_station("CP-PW", password=PASSWORD)
    gateway = await start_gateway(security_profile=0)
    with pytest.raises(InvalidStatus):
        await open_station(gateway, "CP-PW")
    async with await open_station(gateway, "CP-OPEN"):
        pass  # stations without a password may connect on profile 0
    ws = await open_station(gateway, "CP-PW", additional_headers=basic("CP-PW", PASSWORD))
    await ws.close()


async def test_profile_2_tls_with_basic_auth(
    start_gateway: GatewayFactory, registry: Registry, tmp_path: Path
) -> None:
    pki = Pki.create(tmp_path)
    cert, key = pki.issue("localhost", server=True)
    await registry.add_station("CP-TLS", password=PASSWORD)
    gateway = await start_gateway(security_profile=2, ssl_context=tls_context(str(cert), str(key)))
    url = station_url(gateway, "CP-TLS", "wss")
    async with connect(
        url,
        subprotocols=["ocpp1.6"],  # type: ignore[list-item]
        ssl=pki.client_context(),
        additional_headers=basic("CP-TLS", PASSWORD),
    ) as ws:
        assert (await call(ws, "1", "BootNotification", BOOT16))[2]["status"] == "Accepted"
    with pytest.raises(InvalidStatus):
        await connect(url, subprotocols=["ocpp1.6"], ssl=pki.client_context())  # type: ignore[list-item]
    with pytest.raises(HANDSHAKE_FAILS):  # plain WebSocket on the TLS port
        await connect(station_url(gateway, "CP-TLS"), subprotocols=["ocpp1.6"], open_timeout=3)  # type: ignore[list-item]


async def test_profile_3_the_client_certificate_must_name_the_station(
    start_gateway: GatewayFactory, tmp_path: Path
) -> None:
    pki = Pki.create(tmp_path)
    cert, key = pki.issue("localhost", server=True)
    gateway = await start_gateway(
        security_profile=3, ssl_context=tls_context(str(cert), str(key), str(pki.ca_file))
    )
    mine = pki.client_context(pki.issue("CP-M3"))
    async with connect(
        station_url(gateway, "CP-M3", "wss"),
        subprotocols=[Subprotocol("ocpp1.6")],
        ssl=mine,
    ) as ws:
        assert (await call(ws, "1", "BootNotification", BOOT16))[2]["status"] == "Accepted"
    with pytest.raises(InvalidStatus) as other:
        await connect(station_url(gateway, "CP-OTHER", "wss"), subprotocols=["ocpp1.6"], ssl=mine)  # type: ignore[list-item]
    assert "names 'CP-M3'" in other.value.response.body.decode()
    with pytest.raises(HANDSHAKE_FAILS):  # no client certificate: the TLS handshake fails
        await connect(
            station_url(gateway, "CP-M3", "wss"),
            subprotocols=["ocpp1.6"],  # type: ignore[list-item]
            ssl=pki.client_context(),
            open_timeout=5,
        )
    stranger = Pki.create(tmp_path / "..", "Other CA")
    with pytest.raises(HANDSHAKE_FAILS):  # a certificate from another CA
        await connect(
            station_url(gateway, "CP-M3", "wss"),
            subprotocols=["ocpp1.6"],  # type: ignore[list-item]
            ssl=_trusting(pki, stranger.issue("CP-M3")),
            open_timeout=5,
        )


def _trusting(pki: Pki, cert: tuple[Path, Path]) -> Any:
    context = pki.client_context()
    context.load_cert_chain(str(cert[0]), str(cert[1]))
    return context


async def test_a_client_guessing_a_password_is_refused_without_checking_for_a_while(
    pool: AsyncConnectionPool, registry: Registry
) -> None:
    await registry.add_station("CP-G", password=PASSWORD)
    now_s = [0.0]
    admission = Admission(
        pool,
        unknown_stations="accept",
        security_profile=1,
        clock=clock,
        monotonic=lambda: now_s[0],
    )

    async def answer(password: str, client: str = "203.0.113.7") -> str:
        header = basic("CP-G", password)["Authorization"]
        try:
            await admission.authenticate("CP-G", header, None, client)
        except AuthenticationError as exc:
            return exc.answer
        return "in"

    for n in range(5):
        now_s[0] = float(n)
        assert (await answer(f"guess-number-{n:06d}")).startswith("wrong user name or password")
    # The sixth attempt is refused unchecked, even with the right password ...
    assert (await answer(PASSWORD)).startswith("too many failed attempts for station 'CP-G'")
    # ... but only for that client; and once the window has passed, the password works again.
    assert await answer(PASSWORD, client="198.51.100.1") == "in"
    now_s[0] = 61.0
    assert await answer(PASSWORD) == "in"


async def test_a_wrong_password_tells_nothing_about_which_stations_have_one(
    pool: AsyncConnectionPool, registry: Registry
) -> None:
    """Profile 1: a station with a password, one without and an unknown one answer a wrong
    password alike, in the same time and with the same limit on failures."""
    await registry.add_station("CP-T-PASSWORD", password=PASSWORD)
    await registry.add_station("CP-T-NONE")
    kinds = ["CP-T-PASSWORD", "CP-T-NONE", "CP-T-UNKNOWN"]
    admission = Admission(pool, unknown_stations="accept", security_profile=1, clock=clock)

    async def attempt(station_id: str, client: str) -> tuple[str, float]:
        header = basic(station_id, "not-the-password-at-all")["Authorization"]
        started = time.perf_counter()
        try:
            await admission.authenticate(station_id, header, None, client)
        except AuthenticationError as exc:
            return exc.answer, time.perf_counter() - started
        raise AssertionError(f"{station_id} let in with a wrong password")

    durations: dict[str, list[float]] = {kind: [] for kind in kinds}
    for n in range(15):  # interleaved, each from a client of its own: the limit stays out
        for kind in kinds:
            answer, took_s = await attempt(kind, f"192.0.2.{n}")
            assert answer == f"wrong user name or password for station {kind!r}"
            durations[kind].append(took_s)
    medians = {kind: statistics.median(times) for kind, times in durations.items()}
    assert max(medians.values()) / min(medians.values()) < 2, medians  # 100 without the dummy

    # From one client, the sixth wrong password is refused unchecked for every kind alike.
    for kind in kinds:
        answers = [(await attempt(kind, "198.51.100.9"))[0] for _ in range(6)]
        assert answers[-1].startswith(f"too many failed attempts for station {kind!r}")
        assert len(set(answers[:5])) == 1
