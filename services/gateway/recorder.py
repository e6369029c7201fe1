"""Turns the text frames of one WebSocket connection into durable ``Frame`` events."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..core import codec
from ..core.events import ConnectionEvent, ConnectionEventKind, Direction, Frame
from ..core.log import EventLog, Position, Record
from . import metrics

Clock = Callable[[], datetime]

# OCPP-J message types and their element counts: CALL, CALLRESULT, CALLERROR; OCPP 2.1 adds
# CALLRESULTERROR (an error about a CALLRESULT) and SEND (a CALL that gets no answer).
_ARITY = {2: 4, 3: 3, 4: 5}
_ARITY_21 = {**_ARITY, 5: 5, 6: 4}


@dataclass(frozen=True, slots=True)
class FrameInfo:
    message_type: int | None
    unique_id: str | None
    action: str | None
    rejection_reason: str | None = None
    # The parsed frame, when it is proper OCPP-J: read once, used by whoever handles it.
    message: Any = field(default=None, compare=False, repr=False)


MAX_DEPTH = 32  # OCPP payloads nest less than a dozen levels deep


def _depth(value: object) -> int:
    deepest, level = 0, [(value, 1)]
    while level:
        node, depth = level.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            break
        if isinstance(node, dict):
            level.extend((child, depth + 1) for child in node.values())
        elif isinstance(node, list):
            level.extend((child, depth + 1) for child in node)
    return deepest


def _printable(value: object, max_length: int) -> bool:
    return isinstance(value, str) and 0 < len(value) <= max_length and value.isprintable()


def describe(raw: str, ocpp_version: str = "ocpp1.6") -> FrameInfo:
    """Read the OCPP-J envelope of a frame, or say why it is not one."""
    arity = _ARITY_21 if ocpp_version == "ocpp2.1" else _ARITY
    try:
        message = json.loads(raw)
    except (ValueError, RecursionError):
        return FrameInfo(None, None, None, "not valid JSON")
    if not isinstance(message, list) or not message:
        return FrameInfo(None, None, None, "not a JSON array")
    message_type = message[0] if type(message[0]) is int else None
    unique_id = message[1] if len(message) > 1 and _printable(message[1], 36) else None
    # Cheap bound first: nesting needs an opening bracket per level.
    if raw.count("[") + raw.count("{") > MAX_DEPTH and _depth(message) > MAX_DEPTH:
        # The envelope is at the top: a CALL's MessageId can still be read, and answered.
        return FrameInfo(
            message_type if message_type in arity else None,
            unique_id,
            None,
            f"Payload nested deeper than {MAX_DEPTH} levels",
        )
    if message_type not in arity:
        return FrameInfo(None, unique_id, None, "unknown MessageTypeId")
    assert message_type is not None
    if unique_id is None:
        return FrameInfo(message_type, None, None, "MessageId is not 1-36 printable characters")
    if len(message) != arity[message_type]:
        return FrameInfo(message_type, unique_id, None, "wrong number of elements")
    action = None
    if message_type in (2, 6):
        if not _printable(message[2], 64):
            return FrameInfo(
                message_type, unique_id, None, "Action is not 1-64 printable characters"
            )
        action = message[2]
        if not isinstance(message[3], dict):
            return FrameInfo(message_type, unique_id, action, "Payload is not a JSON object")
    return FrameInfo(message_type, unique_id, action, message=message)


class FrameRecorder:
    """Appends every frame of one connection to the log before it is handled or sent."""

    def __init__(
        self,
        log: EventLog,
        *,
        station_id: str,
        ocpp_version: str,
        gateway_id: str,
        connection_id: str,
        clock: Clock,
    ) -> None:
        self._log = log
        self.station_id = station_id
        self.ocpp_version = ocpp_version
        self.gateway_id = gateway_id
        self.connection_id = connection_id
        self._clock = clock
        self._seq = 0
        # Actions of CALLs awaiting an answer, by unique id, so the answer can name its action.
        self._open_calls: OrderedDict[tuple[Direction, str], str] = OrderedDict()

    async def _append(self, event: Frame | ConnectionEvent) -> Position:
        with metrics.APPEND_SECONDS.time():
            record = Record(event.STREAM, event.key, codec.encode(event))
            [position] = await self._log.append([record])
        return position

    async def connection(
        self,
        kind: ConnectionEventKind,
        *,
        remote_address: str | None = None,
        close_code: int | None = None,
        close_reason: str | None = None,
        replaced_by: str | None = None,
    ) -> Position:
        seq = self._seq
        self._seq += 1
        return await self._append(
            ConnectionEvent(
                event_id=f"connection:{self.connection_id}:{seq}",
                station_id=self.station_id,
                kind=kind,
                gateway_id=self.gateway_id,
                connection_id=self.connection_id,
                occurred_at=self._clock(),
                connection_seq=seq,
                subprotocol=self.ocpp_version,
                remote_address=remote_address,
                close_code=close_code,
                close_reason=close_reason,
                replaced_by=replaced_by,
            )
        )

    async def frame(
        self,
        direction: Direction,
        raw: str,
        rejection_reason: str | None = None,
        info: FrameInfo | None = None,
    ) -> Frame:
        """Append one frame; returns once it is durable. ``rejection_reason`` marks a frame
        rejected for a reason its text does not show (binary, oversized); ``info`` is the
        frame's ``describe()`` if the caller has it already."""
        if info is None:
            info = describe(raw, self.ocpp_version)
        if rejection_reason is not None:
            info = FrameInfo(info.message_type, info.unique_id, info.action, rejection_reason)
        action = info.action
        if info.unique_id is not None and info.rejection_reason is None:
            if info.message_type == 2 and action is not None:
                self._open_calls[(direction, info.unique_id)] = action
                while len(self._open_calls) > 64:
                    self._open_calls.popitem(last=False)
            elif info.message_type in (3, 4):
                # An answer travels the other way from the CALL it answers.
                asked_by: Direction = "OUTBOUND" if direction == "INBOUND" else "INBOUND"
                action = self._open_calls.pop((asked_by, info.unique_id), None)
        seq = self._seq
        self._seq += 1
        frame = Frame(
            event_id=f"frame:{self.connection_id}:{seq}",
            station_id=self.station_id,
            ocpp_version=self.ocpp_version,
            direction=direction,
            raw=raw,
            gateway_id=self.gateway_id,
            connection_id=self.connection_id,
            received_at=self._clock(),
            connection_seq=seq,
            message_type=info.message_type,
            rejected=info.rejection_reason is not None,
            rejection_reason=info.rejection_reason,
            unique_id=info.unique_id,
            action=action,
        )
        await self._append(frame)
        metrics.count_frame(self.ocpp_version, direction, frame.message_type, action)
        if frame.rejected and direction == "INBOUND":
            metrics.REJECTED.labels(self.ocpp_version).inc()
        return frame
