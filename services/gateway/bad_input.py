"""What the gateway answers to frames that are not proper OCPP-J, and how it slows floods.

Every such frame is logged first (marked rejected); the answer follows the RPC framework of the
negotiated version. OCPP 1.6 can only answer a CALL whose MessageId it could read. OCPP 2.0.1 and
2.1 also answer an unknown MessageTypeId (MessageTypeNotSupported) and a frame whose MessageId
cannot be read (RpcFrameworkError, with MessageId "-1").
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

from .recorder import FrameInfo

# The ocpp library writes OCPP 2.x error codes; OCPP 1.6 spells two of them differently.
_OCPP16_SPELLING = {
    "FormatViolation": "FormationViolation",
    "OccurrenceConstraintViolation": "OccurenceConstraintViolation",
}


def call_error(unique_id: str, code: str, description: str) -> str:
    return json.dumps([4, unique_id, code, description, {}], ensure_ascii=False)


def error_answer(info: FrameInfo, ocpp_version: str, *, oversized: bool = False) -> str | None:
    """The CALLERROR for a rejected frame, or None where the protocol allows no answer."""
    v16 = ocpp_version == "ocpp1.6"
    reason = info.rejection_reason or "not an OCPP-J message"
    if info.message_type == 2 and info.unique_id is not None:
        if oversized:
            code = "ProtocolError" if v16 else "FormatViolation"
        elif v16:
            code = "FormationViolation"
        elif reason.startswith("Payload"):
            code = "FormatViolation"
        else:
            code = "RpcFrameworkError"
        return call_error(info.unique_id, code, reason)
    if v16:
        return None
    if info.unique_id is not None and info.message_type is None:
        return call_error(info.unique_id, "MessageTypeNotSupported", reason)
    if info.unique_id is None:
        return call_error("-1", "RpcFrameworkError", reason)
    return None


def unhandled_action(unique_id: str, action: str, known_actions: AbstractSet[str]) -> str:
    """The CALLERROR for an action this central system does not handle, with the codes as the
    OCPP-J specification defines them (the ocpp library swaps the two)."""
    if action in known_actions:
        return call_error(
            unique_id, "NotSupported", f"{action} is recognized but not supported by this CSMS"
        )
    return call_error(unique_id, "NotImplemented", f"{action} is not a known action")


def spelled_for(ocpp_version: str, answer: str) -> str:
    """Rewrite a CALLERROR's code to the spelling of OCPP 1.6 where it differs."""
    if ocpp_version != "ocpp1.6" or not answer.startswith("[4"):
        return answer
    try:
        message = json.loads(answer)
    except ValueError:
        return answer
    if len(message) == 5 and message[2] in _OCPP16_SPELLING:
        message[2] = _OCPP16_SPELLING[message[2]]
        return json.dumps(message, ensure_ascii=False, separators=(",", ":"))
    return answer


@dataclass
class RateLimiter:
    """A token bucket per connection: past the burst, the next frame is read only when a token
    is free. Nothing is dropped; a flooding station is slowed down to ``rate_per_s``."""

    rate_per_s: float
    burst: int
    _tokens: float = 0.0
    _at: float = 0.0

    def __post_init__(self) -> None:
        self._tokens = float(self.burst)
        self._at = time.monotonic()

    async def take(self) -> None:
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate_per_s)
        self._at = now
        if self._tokens < 1:
            await asyncio.sleep((1 - self._tokens) / self.rate_per_s)
            self._tokens = 1.0
            self._at = time.monotonic()
        self._tokens -= 1
