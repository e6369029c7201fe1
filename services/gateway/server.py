"""The OCPP-J WebSocket gateway: ``ws://HOST:PORT/ocpp/{station_id}``.

Single ingress per connection: every inbound frame is appended to the log before the ``ocpp``
library sees it, and every outbound frame (the answers) is appended before it is sent. So a
charge point never gets a confirmation for a frame the log does not hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Literal
from urllib.parse import unquote

import ocpp.messages
from ocpp.exceptions import OCPPError
from ocpp.messages import Call
from psycopg_pool import AsyncConnectionPool
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from ..core import codec
from ..core.db import DatabaseUnavailable
from ..core.events import CONNECTIONS, ConnectionEvent
from ..core.ids import STATION_ID_RULE, is_station_id
from ..core.log import EventLog
from . import metrics
from .admission import AuthenticationError, Registration
from .bad_input import RateLimiter, call_error, error_answer, spelled_for, unhandled_action
from .commands import Answer, CommandRunner
from .leases import LEASE_LOST, REPLACED, GatewayLease, LeaseLost
from .ocpp2 import CentralSystem21, CentralSystem201
from .ocpp16 import CentralSystem16
from .recorder import FrameInfo, FrameRecorder, describe
from .routing import shared_route_map
from .services import StationServices
from .succession import Succession
from .validation import Validators

logger = logging.getLogger(__name__)

# In order of preference: a station offering several gets the newest.
SUBPROTOCOLS = ["ocpp2.1", "ocpp2.0.1", "ocpp1.6"]
TRY_AGAIN_LATER = 1013  # RFC 6455 close code: a service is unavailable for now
RETRY_AFTER_S = 5


def station_id_from_path(path: str) -> str | None:
    """The station id in ``/ocpp/{station_id}`` (percent-decoded), or None for other paths."""
    path = path.split("?", 1)[0]
    prefix = "/ocpp/"
    if not path.startswith(prefix):
        return None
    station_id = unquote(path[len(prefix) :])
    return station_id if is_station_id(station_id) else None


def websocket_extensions(compression: Literal["deflate", "off"]) -> list[Any]:
    """permessage-deflate for the stations that offer it, with small windows: OCPP frames are
    small, and each connection keeps its compression state for as long as it is open (about 4
    KiB here, 40 KiB with the WebSocket library's defaults, which 10,000 stations feel)."""
    if compression == "off":
        return []
    return [
        ServerPerMessageDeflateFactory(
            server_max_window_bits=9,
            client_max_window_bits=9,
            compress_settings={"memLevel": 1},
        )
    ]


_ACTIONS: dict[type[Any], tuple[frozenset[str], frozenset[str]]] = {}


def actions_of(central_system: type[Any]) -> tuple[frozenset[str], frozenset[str]]:
    """The actions a central system class answers, and every action of its OCPP version: one
    pair of sets per class, not per connection."""
    if central_system not in _ACTIONS:
        _ACTIONS[central_system] = (
            frozenset(str(action) for action in shared_route_map(central_system)),
            frozenset(str(action) for action in central_system.actions),
        )
    return _ACTIONS[central_system]


class StationWebSocket(ServerConnection):
    """A station's WebSocket, freed as soon as it is closed and no longer referenced.

    The WebSocket library's sans-I/O protocol keeps its parser (a generator that holds the
    protocol) parked at a last ``yield`` once the connection is closed, a reference cycle that
    only a full garbage collection breaks: rare in a busy gateway, so every closed connection,
    with its buffers and compression state, stayed in memory for long, and memory grew with
    each wave of reconnecting stations. The parser is never stepped after the end of the
    stream, so it is closed here.
    """

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.protocol.parser.close()


def release_handshake(connection: ServerConnection) -> None:
    """Drop what only the handshake needed. The WebSocket library gives each connection's
    protocol a ``select_subprotocol`` bound to a closure over the connection: a reference cycle
    that kept every closed connection, its buffers and its compression state, until a full
    garbage collection, which is rare in a busy gateway; so memory grew with every wave of
    reconnecting stations. Without it, a closed connection is freed at once."""
    connection.protocol.__dict__.pop("select_subprotocol", None)


def select_subprotocol(
    connection: ServerConnection, offered: Sequence[Subprotocol]
) -> Subprotocol | None:
    """The newest OCPP version both sides speak. With none in common the handshake completes
    without a subprotocol and the connection is then closed, as OCPP-J prescribes."""
    for version in SUBPROTOCOLS:
        if version in offered:
            return Subprotocol(version)
    return None


def certificate_name(connection: ServerConnection) -> str | None:
    """The common name of the client certificate (mutual TLS), if there is one."""
    transport = getattr(connection, "transport", None)
    certificate = transport.get_extra_info("peercert") if transport is not None else None
    for rdn in (certificate or {}).get("subject", ()):
        for name, value in rdn:
            if name == "commonName":
                return str(value)
    return None


class TlsError(ValueError):
    """The TLS files cannot be used; the message names the file."""


def tls_context(cert_file: str, key_file: str, client_ca_file: str | None = None) -> ssl.SSLContext:
    """Server TLS (profiles 2 and 3); with a client CA, station certificates are required (3)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # OCPP: TLS 1.2 or newer
    try:
        context.load_cert_chain(cert_file, key_file)
    except (OSError, ssl.SSLError) as exc:
        raise TlsError(
            f"cannot use TLS certificate {cert_file} with key {key_file}: {exc}"
        ) from exc
    if client_ca_file is not None:
        try:
            context.load_verify_locations(client_ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise TlsError(f"cannot use client CA file {client_ca_file}: {exc}") from exc
        context.verify_mode = ssl.CERT_REQUIRED
    return context


@dataclass(frozen=True)
class Ending:
    """Why the gateway closes a connection: the close code and reason it sends."""

    code: int
    reason: str
    replaced_by: str | None = None


LEASE_LOST_ENDING = Ending(LEASE_LOST, "this gateway lost its lease; reconnect")


@dataclass(frozen=True)
class InputLimits:
    max_frame_bytes: int = 1 << 20
    rate_per_s: float = 50.0
    burst: int = 200


class LoggedConnection:
    """What the ``ocpp`` library reads from and writes to: a WebSocket that logs first.

    Frames that are not proper OCPP-J never reach the library: they are logged as rejected and
    answered here, as far as the protocol allows (see ``bad_input``).
    """

    def __init__(
        self,
        websocket: ServerConnection,
        recorder: FrameRecorder,
        limits: InputLimits,
        registration: Registration,
    ) -> None:
        self._websocket = websocket
        self._recorder = recorder
        self._limits = limits
        self.registration = registration
        self._calls: dict[str, asyncio.Future[Answer]] = {}  # our CALLs awaiting an answer
        self.last_call: list[Any] = []  # the CALL ``recv`` returned last, parsed
        self._rate = RateLimiter(limits.rate_per_s, limits.burst)
        self.handled: frozenset[str] = frozenset()  # actions the central system answers
        self.known: frozenset[str] = frozenset()  # every action of the negotiated version
        self._validators = Validators(recorder.ocpp_version)
        self._asked: dict[str, str] = {}  # unique id -> action of CALLs handed to the library
        self._boot_asked: asyncio.Task[None] | None = None
        self.ending: Ending | None = None
        self._closing: asyncio.Task[None] | None = None

    def end(self, ending: Ending) -> None:
        """Close the connection. From now on nothing it sends is answered: what still arrives
        is logged as rejected, and answers in the making are dropped."""
        if self.ending is not None:
            return
        self.ending = ending
        self._closing = asyncio.create_task(self._websocket.close(ending.code, ending.reason))

    async def recv(self) -> str:
        station_id = self._recorder.station_id
        version = self._recorder.ocpp_version
        while True:
            await self._rate.take()
            message = await self._websocket.recv()
            if self.ending is not None:
                if isinstance(message, bytes):
                    message = message.decode("utf-8", errors="replace")
                why = f"the connection is closing: {self.ending.reason}"
                with contextlib.suppress(Exception):
                    await self._recorder.frame("INBOUND", message, why)
                continue
            if isinstance(message, bytes):
                await self._recorder.frame(
                    "INBOUND", message.decode("utf-8", errors="replace"), "binary frame"
                )
                logger.warning(
                    "%s sent a binary frame; OCPP-J uses text frames",
                    station_id,
                    extra={"station_id": station_id},
                )
                continue
            # A character is at most 4 bytes in UTF-8: count the bytes only when it can matter.
            size = len(message)
            if size * 4 > self._limits.max_frame_bytes:
                size = len(message.encode("utf-8"))
            oversized = size > self._limits.max_frame_bytes
            described = describe(message, version)
            frame = await self._recorder.frame(
                "INBOUND",
                message,
                f"frame of {size} bytes is over the limit of {self._limits.max_frame_bytes}"
                if oversized
                else None,
                described,
            )
            if frame.rejected:
                logger.warning(
                    "%s sent a frame that is not OCPP-J (%s)",
                    station_id,
                    frame.rejection_reason,
                    extra={"station_id": station_id, "unique_id": frame.unique_id},
                )
                info = FrameInfo(
                    frame.message_type, frame.unique_id, frame.action, frame.rejection_reason
                )
                answer = error_answer(info, version, oversized=oversized)
                if answer is not None:
                    await self.send(answer)
                continue
            if frame.message_type in (3, 4):
                # Answers to commands; anything else answers nothing. It is logged either way,
                # but never queued in the library, where it would pile up.
                future = self._calls.get(frame.unique_id or "")
                if future is not None and not future.done():
                    future.set_result(_answer(described.message))
                continue
            if frame.message_type != 2 or frame.unique_id is None or frame.action is None:
                continue
            if frame.action not in self.handled:
                await self.send(unhandled_action(frame.unique_id, frame.action, self.known))
                continue
            if not self.registration.allows(frame.action):
                logger.warning(
                    "%s sent %s while not accepted (%s)",
                    station_id,
                    frame.action,
                    self.registration.status,
                    extra={"station_id": station_id, "unique_id": frame.unique_id},
                )
                error = call_error(frame.unique_id, "SecurityError", self.registration.refusal())
                await self.send(error)
                if self.registration.status is None and self._boot_asked is None:
                    # Never booted here (it may have booted before this gateway knew boots,
                    # and only reconnected): ask for a BootNotification rather than refuse on.
                    self._boot_asked = asyncio.create_task(self._ask_for_boot())
                continue
            payload = described.message[3]
            try:
                self._validators.request(frame.action, payload)
            except OCPPError as error:
                call = Call(frame.unique_id, frame.action, payload)
                await self.send(call.create_call_error(error).to_json())
                continue
            self._asked[frame.unique_id] = frame.action
            if len(self._asked) > 64:
                del self._asked[next(iter(self._asked))]
            self.last_call = described.message
            return message

    async def send(self, message: str) -> None:
        if self.ending is not None:
            return  # never confirm anything on a connection being closed
        if message.startswith(("[3", "[4")):
            answer = json.loads(message)
            action = self._asked.pop(answer[1], None)
            if action is not None and answer[0] == 3:
                try:
                    self._validators.response(action, answer[2])
                except OCPPError as error:
                    # Our answer is wrong, not the station's request: say so.
                    logger.error("invalid %s answer %s: %s", action, message, error)
                    message = call_error(answer[1], "InternalError", f"invalid answer: {error}")
        message = spelled_for(self._recorder.ocpp_version, message)
        await self._recorder.frame("OUTBOUND", message)
        await self._websocket.send(message)

    async def call(self, unique_id: str, action: str, payload: Any, timeout_s: float) -> Answer:
        """Send a CALL to the station (logged first) and wait for its answer."""
        if self.ending is not None:
            raise ConnectionError(f"the connection is closing: {self.ending.reason}")
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._calls[unique_id] = future
        try:
            await self.send(json.dumps([2, unique_id, action, payload], separators=(",", ":")))
            async with asyncio.timeout(timeout_s):
                answer = await future
        finally:
            self._calls.pop(unique_id, None)
        accepted = isinstance(answer.payload, dict) and answer.payload.get("status") == "Accepted"
        if action in ("TriggerMessage", "ExtendedTriggerMessage") and accepted:
            # Without a connector (1.6) or EVSE (2.x), the station may answer per connector.
            one = "connectorId" in payload or "evse" in payload
            self.registration.trigger(str(payload.get("requestedMessage")), once=one)
        return answer

    async def _ask_for_boot(self) -> None:
        request = {"requestedMessage": "BootNotification"}
        try:
            await self.call(f"boot-{uuid.uuid4().hex[:12]}", "TriggerMessage", request, 30)
        except Exception as exc:  # no answer, gone, or the log refused the frame
            station_id = self._recorder.station_id
            logger.info(
                "%s did not answer TriggerMessage(BootNotification): %r",
                station_id,
                exc,
                extra={"station_id": station_id},
            )

    def closed(self) -> None:
        for future in self._calls.values():
            if not future.done():
                future.set_exception(ConnectionError("the station disconnected"))


def _answer(message: Any) -> Answer:
    if message[0] == 3:
        return Answer(payload=message[2])
    description = message[3] if len(message) > 3 else ""
    return Answer(error_code=str(message[2]), error_description=str(description))


class Gateway:
    def __init__(
        self,
        log: EventLog,
        pool: AsyncConnectionPool,
        services: StationServices,
        *,
        gateway_id: str,
        limits: InputLimits = InputLimits(),
        ssl_context: ssl.SSLContext | None = None,
        new_connection_id: Callable[[], str] = lambda: uuid.uuid4().hex,
        lease_s: float = 15.0,
        database_problem: Callable[[], str | None] = lambda: None,
        compression: Literal["deflate", "off"] = "deflate",
    ) -> None:
        self._log = log
        self._compression = compression
        self._database_problem = database_problem
        self._pool = pool
        self._services = services
        self.gateway_id = gateway_id
        self._limits = limits
        self._ssl_context = ssl_context
        self._new_connection_id = new_connection_id
        self._server: Server | None = None
        self._connections: dict[str, LoggedConnection] = {}  # those commands may go to
        self._live: dict[str, LoggedConnection] = {}  # every open connection
        self._commands = CommandRunner(
            pool,
            log,
            gateway_id=gateway_id,
            clock=services.clock,
            connections=self._connections,
        )
        self._command_task: asyncio.Task[None] | None = None
        self._lease = GatewayLease(
            pool, log, gateway_id=gateway_id, lease_s=lease_s, clock=services.clock
        )
        self._succession = Succession()
        self._follow_next: dict[int, int] = {}
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, host: str, port: int) -> None:
        # Routes skip the library's validation (validation.py does it); should any run, it runs
        # inline: under the GIL a thread pool buys nothing and each hop costs more than it does.
        ocpp.messages.ASYNC_VALIDATION = False
        # What a previous run under this id left (killed) is closed in the log here.
        await self._lease.acquire()
        await self._commands.start_offsets()
        partitions = await self._log.partitions(CONNECTIONS)
        self._follow_next = {
            p: await self._log.end_offset(CONNECTIONS, p) for p in range(partitions)
        }
        self._command_task = asyncio.create_task(self._commands.run(), name="gateway-commands")
        self._tasks = [
            asyncio.create_task(self._follow_connections(), name="gateway-connections"),
            asyncio.create_task(self._keep_lease(), name="gateway-lease"),
        ]
        self._server = await serve(
            self._handle,
            host,
            port,
            ssl=self._ssl_context,
            select_subprotocol=select_subprotocol,
            process_request=self._check_request,
            # Larger frames are still read (to log and answer them) up to four times the limit;
            # beyond that the WebSocket layer closes the connection (1009).
            max_size=4 * self._limits.max_frame_bytes,
            compression=None,
            extensions=websocket_extensions(self._compression),
            create_connection=StationWebSocket,
        )

    @property
    def port(self) -> int:
        assert self._server is not None
        sockets = list(self._server.sockets)
        return int(sockets[0].getsockname()[1])

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """(host, port) of every socket the OCPP port really listens on."""
        assert self._server is not None
        return [tuple(sock.getsockname()[:2]) for sock in self._server.sockets]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close(close_connections=True)
            with contextlib.suppress(asyncio.TimeoutError):
                async with asyncio.timeout(10):
                    await self._server.wait_closed()
            self._server = None
        if self._command_task is not None:
            self._command_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._command_task
            self._command_task = None
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        try:
            await self._lease.release()
        except Exception as exc:  # it runs out, and another gateway closes what is left
            logger.warning("could not release the lease of gateway %s: %s", self.gateway_id, exc)

    async def _follow_connections(self) -> None:
        """Every gateway's OPENED events: a newer connection of a station this gateway holds
        replaces the one here (see ``succession``)."""
        group = f"gateway-connections.{self.gateway_id}.{uuid.uuid4().hex[:8]}"

        async def offsets(stream: str, partitions: Sequence[int]) -> dict[int, int]:
            return {p: self._follow_next[p] for p in partitions if p in self._follow_next}

        subscription = self._log.subscribe(CONNECTIONS, group, offsets)
        try:
            while True:
                try:
                    entries = await subscription.poll(500, 0.5)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    logger.error(
                        "reading ocpp.connections failed; retrying in 1 s: %s",
                        exc,
                        exc_info=not isinstance(exc, DatabaseUnavailable),
                    )
                    await asyncio.sleep(1)
                    continue
                for entry in entries:
                    self._follow_next[entry.position.partition] = entry.position.offset + 1
                    with contextlib.suppress(codec.DecodeError):
                        event = codec.decode(entry.value)
                        if isinstance(event, ConnectionEvent):
                            self._follow(event, entry.position.offset)
        finally:
            await subscription.close()

    def _follow(self, event: ConnectionEvent, offset: int) -> None:
        if event.kind == "OPENED":
            replaced = self._succession.opened(
                event.station_id, event.connection_id, offset, here=False
            )
            for connection_id in replaced:
                self._replace(event.station_id, connection_id)
        elif event.detected and event.connection_id in self._live:
            # Another gateway found this one's lease run out: the log says it is closed.
            self._live[event.connection_id].end(LEASE_LOST_ENDING)

    def _replace(self, station_id: str, connection_id: str) -> None:
        connection = self._live.get(connection_id)
        if connection is None:
            return
        newer = self._succession.newest(station_id)
        logger.info(
            "%s: connection %s replaced by the newer connection %s",
            station_id,
            connection_id,
            newer,
            extra={"station_id": station_id},
        )
        connection.end(Ending(REPLACED, "replaced by a newer connection", newer))

    async def _keep_lease(self) -> None:
        """Renew the lease, and close the connections of gateways whose lease ran out. A
        gateway that loses its own lease closes its connections, and takes a new lease once
        they are gone: its stations reconnect, here or elsewhere, and presence follows."""
        lease = self._lease
        failing = False
        while True:
            await asyncio.sleep(lease.interval_s)
            try:
                if lease.lease_id is None:
                    if not self._live:
                        async with asyncio.timeout(lease.lease_s):
                            await lease.acquire()
                        logger.warning("gateway %s holds a lease again", self.gateway_id)
                    continue
                try:
                    # No longer than until the next renewal: PostgreSQL may not answer at all.
                    async with asyncio.timeout(lease.interval_s):
                        held = await lease.renew()
                    failing = False
                except Exception as exc:
                    if not failing:
                        logger.warning("could not renew the lease of this gateway: %r", exc)
                    failing = True
                    held = not lease.overdue
                    if not held:
                        lease.lose()
                if not held:
                    self._lease_lost()
                    continue
                if not failing:
                    async with asyncio.timeout(lease.lease_s):
                        closed = await lease.expire_dead()
                    if closed:
                        logger.warning(
                            "closed %d connections of gateways whose lease ran out", closed
                        )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # PostgreSQL or the log is away: try again next time
                logger.warning("lease upkeep failed: %r", exc)

    def _lease_lost(self) -> None:
        logger.error(
            "gateway %s lost its lease: closing its %d connections, their stations reconnect",
            self.gateway_id,
            len(self._live),
        )
        for connection in list(self._live.values()):
            connection.end(LEASE_LOST_ENDING)

    async def _check_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        refusal = await self._refusal(connection, request)
        if refusal is not None:
            release_handshake(connection)
        return refusal

    async def _refusal(self, connection: ServerConnection, request: Request) -> Response | None:
        station_id = station_id_from_path(request.path)
        if station_id is None:
            metrics.REFUSED_CONNECTIONS.labels("path").inc()
            return connection.respond(
                HTTPStatus.NOT_FOUND,
                f"Connect to /ocpp/{{station_id}}; the station id is {STATION_ID_RULE}.\n",
            )
        if (problem := self._database_problem()) is not None:
            # At once, never a hang: the station retries, and nothing is confirmed meanwhile.
            metrics.REFUSED_CONNECTIONS.labels("database").inc()
            response = connection.respond(
                HTTPStatus.SERVICE_UNAVAILABLE, f"{problem}; connect again shortly.\n"
            )
            response.headers["Retry-After"] = str(RETRY_AFTER_S)
            return response
        if self._lease.lease_id is None:
            metrics.REFUSED_CONNECTIONS.labels("lease").inc()
            return connection.respond(
                HTTPStatus.SERVICE_UNAVAILABLE,
                "This gateway lost its lease in PostgreSQL; connect again later or elsewhere.\n",
            )
        try:
            remote = connection.remote_address
            await self._services.admission.authenticate(
                station_id,
                request.headers.get("Authorization"),
                certificate_name(connection),
                str(remote[0]) if remote else "",
            )
        except AuthenticationError as exc:
            metrics.REFUSED_CONNECTIONS.labels("authentication").inc()
            logger.warning("%s refused: %s", station_id, exc, extra={"station_id": station_id})
            response = connection.respond(HTTPStatus.UNAUTHORIZED, f"{exc.answer}\n")
            response.headers["WWW-Authenticate"] = 'Basic realm="OCPP", charset="UTF-8"'
            return response
        return None

    async def _handle(self, websocket: ServerConnection) -> None:
        release_handshake(websocket)
        station_id = station_id_from_path(websocket.request.path if websocket.request else "")
        subprotocol = websocket.subprotocol
        if station_id is None or subprotocol is None:
            offered = (
                websocket.request.headers.get_all("Sec-WebSocket-Protocol")
                if websocket.request
                else []
            )
            logger.warning(
                "%s offered no supported OCPP version (%s)",
                station_id,
                offered,
                extra={"station_id": station_id},
            )
            await websocket.close(
                1002, f"no supported subprotocol; use one of {', '.join(SUBPROTOCOLS)}"
            )
            return
        connection_id = self._new_connection_id()
        recorder = FrameRecorder(
            self._log,
            station_id=station_id,
            ocpp_version=subprotocol,
            gateway_id=self.gateway_id,
            connection_id=connection_id,
            clock=self._services.clock,
        )
        remote = websocket.remote_address
        remote_address = f"{remote[0]}:{remote[1]}" if remote else None
        metrics.CONNECTIONS.labels(subprotocol).inc()
        connection: LoggedConnection | None = None
        try:
            registration = await self._services.admission.registration(station_id)
            connection = LoggedConnection(websocket, recorder, self._limits, registration)
            central_system: Any
            if subprotocol == "ocpp1.6":
                central_system = CentralSystem16(
                    station_id, connection, services=self._services, registration=registration
                )
            else:
                version = CentralSystem21 if subprotocol == "ocpp2.1" else CentralSystem201
                central_system = version(
                    station_id, connection, services=self._services, registration=registration
                )
            connection.handled, connection.known = actions_of(type(central_system))
            logger.info(
                "%s connected from %s (%s)",
                station_id,
                remote_address,
                subprotocol,
                extra={"station_id": station_id},
            )
            self._live[connection_id] = connection
            opened = await recorder.connection("OPENED", remote_address=remote_address)
            # The newest connection wins: older ones here close now, on other gateways once
            # they read this OPENED; this one, if a newer one was seen first.
            for older in self._succession.opened(
                station_id, connection_id, opened.offset, here=True
            ):
                self._replace(station_id, older)
            if connection.ending is None:
                try:
                    await self._lease.hold(
                        station_id,
                        connection_id,
                        subprotocol,
                        opened.offset,
                        self._services.clock(),
                    )
                    self._connections[connection_id] = connection
                except LeaseLost:
                    connection.end(LEASE_LOST_ENDING)
            await central_system.start()
        except ConnectionClosed:
            pass
        except DatabaseUnavailable as exc:
            # PostgreSQL is down: what this frame asked is not confirmed; the station resends
            # it after reconnecting, which the handshake refuses until the database is back.
            logger.warning(
                "%s: closing the connection, %s", station_id, exc, extra={"station_id": station_id}
            )
            with contextlib.suppress(Exception):
                await websocket.close(TRY_AGAIN_LATER, "database unavailable; reconnect and resend")
        except Exception:
            # The log could not take a frame (or a bug): drop the connection without answering;
            # the station keeps the unconfirmed message and sends it again after reconnecting.
            logger.exception(
                "%s: closing the connection after an error",
                station_id,
                extra={"station_id": station_id},
            )
            with contextlib.suppress(Exception):
                await websocket.close(1011, "internal error; reconnect and resend")
        finally:
            metrics.CONNECTIONS.labels(subprotocol).dec()
            self._connections.pop(connection_id, None)
            self._live.pop(connection_id, None)
            self._succession.closed(station_id, connection_id)
            if connection is not None:
                connection.closed()
            await self._closed(recorder, websocket, connection)

    async def _closed(
        self,
        recorder: FrameRecorder,
        websocket: ServerConnection,
        connection: LoggedConnection | None,
    ) -> None:
        code: Any = websocket.close_code
        reason = websocket.close_reason
        ending = connection.ending if connection is not None else None
        if ending is not None:  # what the gateway sent, whether or not the station answered
            code, reason = ending.code, ending.reason
        with contextlib.suppress(Exception):
            await self._lease.drop(recorder.connection_id)
        with contextlib.suppress(Exception):
            await recorder.connection(
                "CLOSED",
                close_code=int(code) if code is not None else None,
                close_reason=reason,
                replaced_by=ending.replaced_by if ending is not None else None,
            )
        logger.info(
            "%s disconnected (%s)",
            recorder.station_id,
            code,
            extra={"station_id": recorder.station_id},
        )
