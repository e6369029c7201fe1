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
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

import ocpp.messages
from ocpp.exceptions import OCPPError
from ocpp.messages import Call
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from ..core.log import EventLog
from . import metrics
from .bad_input import RateLimiter, call_error, error_answer, spelled_for, unhandled_action
from .ocpp2 import CentralSystem21, CentralSystem201
from .ocpp16 import CentralSystem16
from .recorder import Clock, FrameInfo, FrameRecorder
from .transaction_ids import TransactionIdAllocator
from .validation import Validators

logger = logging.getLogger(__name__)

# In order of preference: a station offering several gets the newest.
SUBPROTOCOLS = ["ocpp2.1", "ocpp2.0.1", "ocpp1.6"]
# OCPP 1.6 chargeBoxIdentity is a CiString48; printable ASCII without '/' keeps URLs unambiguous.
_STATION_ID = re.compile(r"[\x21-\x2e\x30-\x7e]{1,48}")


def station_id_from_path(path: str) -> str | None:
    """The station id in ``/ocpp/{station_id}`` (percent-decoded), or None for other paths."""
    path = path.split("?", 1)[0]
    prefix = "/ocpp/"
    if not path.startswith(prefix):
        return None
    station_id = unquote(path[len(prefix) :])
    return station_id if _STATION_ID.fullmatch(station_id) else None


def select_subprotocol(
    connection: ServerConnection, offered: Sequence[Subprotocol]
) -> Subprotocol | None:
    """The newest OCPP version both sides speak. With none in common the handshake completes
    without a subprotocol and the connection is then closed, as OCPP-J prescribes."""
    for version in SUBPROTOCOLS:
        if version in offered:
            return Subprotocol(version)
    return None


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
        self, websocket: ServerConnection, recorder: FrameRecorder, limits: InputLimits
    ) -> None:
        self._websocket = websocket
        self._recorder = recorder
        self._limits = limits
        self._rate = RateLimiter(limits.rate_per_s, limits.burst)
        self.handled: set[str] = set()  # actions the central system answers
        self.known: set[str] = set()  # every action of the negotiated version
        self._validators = Validators(recorder.ocpp_version)
        self._asked: dict[str, str] = {}  # unique id -> action of CALLs handed to the library

    async def recv(self) -> str:
        station_id = self._recorder.station_id
        version = self._recorder.ocpp_version
        while True:
            await self._rate.take()
            message = await self._websocket.recv()
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
            size = len(message.encode("utf-8"))
            oversized = size > self._limits.max_frame_bytes
            frame = await self._recorder.frame(
                "INBOUND",
                message,
                f"frame of {size} bytes is over the limit of {self._limits.max_frame_bytes}"
                if oversized
                else None,
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
            if frame.message_type != 2 or frame.unique_id is None or frame.action is None:
                # This gateway sends no CALLs yet, so an answer from the station answers nothing;
                # it is logged, but not queued in the library where it would pile up.
                continue
            if frame.action not in self.handled:
                await self.send(unhandled_action(frame.unique_id, frame.action, self.known))
                continue
            payload = json.loads(message)[3]
            try:
                self._validators.request(frame.action, payload)
            except OCPPError as error:
                call = Call(frame.unique_id, frame.action, payload)
                await self.send(call.create_call_error(error).to_json())
                continue
            self._asked[frame.unique_id] = frame.action
            if len(self._asked) > 64:
                del self._asked[next(iter(self._asked))]
            return message

    async def send(self, message: str) -> None:
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


class Gateway:
    def __init__(
        self,
        log: EventLog,
        transaction_ids: TransactionIdAllocator,
        *,
        gateway_id: str,
        clock: Clock,
        heartbeat_interval_s: int = 300,
        limits: InputLimits = InputLimits(),
        new_connection_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self._log = log
        self._transaction_ids = transaction_ids
        self.gateway_id = gateway_id
        self._clock = clock
        self._heartbeat_interval_s = heartbeat_interval_s
        self._limits = limits
        self._new_connection_id = new_connection_id
        self._server: Server | None = None

    async def start(self, host: str, port: int) -> None:
        # Routes skip the library's validation (validation.py does it); should any run, it runs
        # inline: under the GIL a thread pool buys nothing and each hop costs more than it does.
        ocpp.messages.ASYNC_VALIDATION = False
        self._server = await serve(
            self._handle,
            host,
            port,
            select_subprotocol=select_subprotocol,
            process_request=self._check_path,
            # Larger frames are still read (to log and answer them) up to four times the limit;
            # beyond that the WebSocket layer closes the connection (1009).
            max_size=4 * self._limits.max_frame_bytes,
        )

    @property
    def port(self) -> int:
        assert self._server is not None
        sockets = list(self._server.sockets)
        return int(sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close(close_connections=True)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 10)
            self._server = None

    def _check_path(self, connection: ServerConnection, request: Request) -> Response | None:
        if station_id_from_path(request.path) is None:
            return connection.respond(
                HTTPStatus.NOT_FOUND,
                "Connect to /ocpp/{station_id}; the station id is 1-48 printable characters.\n",
            )
        return None

    async def _handle(self, websocket: ServerConnection) -> None:
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
        recorder = FrameRecorder(
            self._log,
            station_id=station_id,
            ocpp_version=subprotocol,
            gateway_id=self.gateway_id,
            connection_id=self._new_connection_id(),
            clock=self._clock,
        )
        remote = websocket.remote_address
        remote_address = f"{remote[0]}:{remote[1]}" if remote else None
        connection = LoggedConnection(websocket, recorder, self._limits)
        central_system: Any
        if subprotocol == "ocpp1.6":
            central_system = CentralSystem16(
                station_id,
                connection,
                transaction_ids=self._transaction_ids,
                clock=self._clock,
                heartbeat_interval_s=self._heartbeat_interval_s,
            )
        else:
            version = CentralSystem21 if subprotocol == "ocpp2.1" else CentralSystem201
            central_system = version(
                station_id,
                connection,
                clock=self._clock,
                heartbeat_interval_s=self._heartbeat_interval_s,
            )
        connection.handled = {str(action) for action in central_system.route_map}
        connection.known = {str(action) for action in central_system.actions}
        logger.info(
            "%s connected from %s (%s)",
            station_id,
            remote_address,
            subprotocol,
            extra={"station_id": station_id},
        )
        metrics.CONNECTIONS.labels(subprotocol).inc()
        try:
            await recorder.connection("OPENED", remote_address=remote_address)
            await central_system.start()
        except ConnectionClosed:
            pass
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
            await self._closed(recorder, websocket)

    async def _closed(self, recorder: FrameRecorder, websocket: ServerConnection) -> None:
        code: Any = websocket.close_code
        with contextlib.suppress(Exception):
            await recorder.connection(
                "CLOSED",
                close_code=int(code) if code is not None else None,
                close_reason=websocket.close_reason,
            )
        logger.info(
            "%s disconnected (%s)",
            recorder.station_id,
            code,
            extra={"station_id": recorder.station_id},
        )
