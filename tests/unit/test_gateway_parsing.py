"""What the gateway reads from a frame's envelope and from the connection URL."""

from __future__ import annotations

import pytest

from chargeledger.gateway.recorder import FrameInfo, describe
from chargeledger.gateway.server import station_id_from_path


@pytest.mark.parametrize(
    ("raw", "info"),
    [
        ('[2,"1","Heartbeat",{}]', FrameInfo(2, "1", "Heartbeat")),
        ('[3,"1",{"currentTime":"x"}]', FrameInfo(3, "1", None)),
        ('[4,"1","NotImplemented","",{}]', FrameInfo(4, "1", None)),
        ("not json", FrameInfo(None, None, None, "not valid JSON")),
        ('{"a":1}', FrameInfo(None, None, None, "not a JSON array")),
        ("[]", FrameInfo(None, None, None, "not a JSON array")),
        ('[9,"1"]', FrameInfo(None, "1", None, "unknown MessageTypeId")),
        ('[true,"1","Heartbeat",{}]', FrameInfo(None, "1", None, "unknown MessageTypeId")),
        (
            '[2,1,"Heartbeat",{}]',
            FrameInfo(2, None, None, "MessageId is not 1-36 printable characters"),
        ),
        (
            '[2,"\\u0000","Heartbeat",{}]',
            FrameInfo(2, None, None, "MessageId is not 1-36 printable characters"),
        ),
        (
            '[2,"\\ud800","Heartbeat",{}]',
            FrameInfo(2, None, None, "MessageId is not 1-36 printable characters"),
        ),
        (
            '[2,"' + "x" * 37 + '","Heartbeat",{}]',
            FrameInfo(2, None, None, "MessageId is not 1-36 printable characters"),
        ),
        ("[" * 100_000 + "]" * 100_000, FrameInfo(None, None, None, "not valid JSON")),
        (
            '[2,"1","Heartbeat",' + '{"a":' * 40 + "1" + "}" * 40 + "]",
            FrameInfo(2, "1", None, "Payload nested deeper than 32 levels"),
        ),
        (
            "[2," + "[" * 40 + "]" * 40 + ',"Heartbeat",{}]',
            FrameInfo(2, None, None, "Payload nested deeper than 32 levels"),
        ),
        ('[2,"1","Heartbeat"]', FrameInfo(2, "1", None, "wrong number of elements")),
        ('[2,"1",5,{}]', FrameInfo(2, "1", None, "Action is not 1-64 printable characters")),
        (
            '[2,"1","Heart\\u0000beat",{}]',
            FrameInfo(2, "1", None, "Action is not 1-64 printable characters"),
        ),
        ('[2,"1","Heartbeat",[]]', FrameInfo(2, "1", "Heartbeat", "Payload is not a JSON object")),
    ],
)
def test_describe(raw: str, info: FrameInfo) -> None:
    assert describe(raw) == info


@pytest.mark.parametrize(
    ("path", "station_id"),
    [
        ("/ocpp/CP-1", "CP-1"),
        ("/ocpp/CP%201", None),  # a space is not printable ASCII without spaces
        ("/ocpp/CP%2D1", "CP-1"),
        ("/ocpp/CP-1?x=1", "CP-1"),
        ("/ocpp/", None),
        ("/ocpp/a/b", None),
        ("/other/CP-1", None),
        ("/ocpp/" + "x" * 48, "x" * 48),
        ("/ocpp/" + "x" * 49, None),
        ("/ocpp/%00", None),
        # Ids the API and the CLI could not address the same way: one rule everywhere.
        ("/ocpp/%2e%2e", None),
        ("/ocpp/.", None),
        ("/ocpp/A%3FB", None),
        ("/ocpp/A%23B", None),
        ("/ocpp/A%25B", None),
        ("/ocpp/CP.1:a_b@c", "CP.1:a_b@c"),
    ],
)
def test_station_id_from_path(path: str, station_id: str | None) -> None:
    assert station_id_from_path(path) == station_id
