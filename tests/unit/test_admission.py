"""Reading HTTP Basic credentials from a station's handshake."""

from __future__ import annotations

import base64

import pytest

from chargeledger.gateway.admission import Registration, basic_credentials


def header(text: str, scheme: str = "Basic") -> str:
    return f"{scheme} {base64.b64encode(text.encode()).decode()}"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (header("CP-1:secret:with:colons"), ("CP-1", "secret:with:colons")),
        (header("CP-1:pässwörd"), ("CP-1", "pässwörd")),
        (header("CP-1:x", scheme="basic"), ("CP-1", "x")),
        (header("CP-1"), None),  # no colon: no password
        ("Basic !!!not-base64", None),
        ("Bearer abc", None),
        ("", None),
        (None, None),
    ],
)
def test_basic_credentials(value: str | None, expected: tuple[str, str] | None) -> None:
    assert basic_credentials(value) == expected


def test_a_pending_station_may_send_what_was_triggered() -> None:
    registration = Registration("Pending")
    assert registration.allows("BootNotification")
    assert not registration.allows("StatusNotification")
    registration.trigger("StatusNotification")  # for one connector: once
    registration.trigger("SignChargingStationCertificate")
    assert registration.allows("StatusNotification")
    assert not registration.allows("StatusNotification")
    assert registration.allows("SignCertificate")
    assert not Registration(None).allows("Heartbeat")
    assert Registration("Accepted").allows("Heartbeat")


def test_a_trigger_for_the_whole_station_lets_every_connector_answer() -> None:
    registration = Registration("Pending")
    registration.trigger("StatusNotification", once=False)
    assert all(registration.allows("StatusNotification") for _ in range(4))
    assert not registration.allows("MeterValues")
