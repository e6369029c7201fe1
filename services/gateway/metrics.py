"""Prometheus metrics of the gateway (served by the HTTP API at /metrics)."""

from __future__ import annotations

from functools import cache

from ocpp.v16.enums import Action as Action16
from ocpp.v21.enums import Action as Action21
from ocpp.v201.enums import Action as Action201
from prometheus_client import Counter, Gauge, Histogram

KNOWN_ACTIONS = frozenset(
    {str(a) for a in Action16}
    | {str(a) for a in Action201}
    | {str(a) for a in Action21}
    | {"NotifyPeriodicEventStream"}
)

CONNECTIONS = Gauge(
    "chargeledger_gateway_connections", "Open station connections.", ["ocpp_version"]
)
FRAMES = Counter(
    "chargeledger_gateway_frames_total",
    "Frames logged, by version, direction, OCPP message type and action.",
    ["ocpp_version", "direction", "message_type", "action"],
)
REJECTED = Counter(
    "chargeledger_gateway_frames_rejected_total",
    "Inbound frames that were not proper OCPP-J (logged, answered where possible).",
    ["ocpp_version"],
)
APPEND_SECONDS = Histogram(
    "chargeledger_gateway_append_seconds",
    "Time from handing a frame to the log until it is durable.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)


def action_label(action: str | None) -> str:
    """Known actions by name; anything else as one value, so stations cannot add labels."""
    if action is None:
        return ""
    return action if action in KNOWN_ACTIONS else "other"


COMMANDS = Counter(
    "chargeledger_gateway_commands_total",
    "Commands sent to stations by this gateway, by action and outcome.",
    ["action", "status"],
)
REFUSED_CONNECTIONS = Counter(
    "chargeledger_gateway_refused_connections_total",
    "WebSocket handshakes refused, by reason (authentication, path, lease).",
    ["reason"],
)


@cache
def _frames(ocpp_version: str, direction: str, message_type: str, action: str) -> Counter:
    return FRAMES.labels(ocpp_version, direction, message_type, action)


def count_frame(
    ocpp_version: str, direction: str, message_type: int | None, action: str | None
) -> None:
    # Children are looked up once: labels() takes a lock each time. Every label is bounded.
    kind = str(message_type) if message_type is not None else ""
    _frames(ocpp_version, direction, kind, action_label(action)).inc()
