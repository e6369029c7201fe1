"""Compiled schema validation gives the OCPP-J error codes the ocpp library would give."""

from __future__ import annotations

from typing import Any

import pytest
from ocpp.exceptions import OCPPError

from chargeledger.gateway.validation import Validators

BOOT16 = {"chargePointVendor": "V", "chargePointModel": "M"}


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({**BOOT16, "extra": 1}, "FormatViolation"),
        ({**BOOT16, "chargePointVendor": 5}, "TypeConstraintViolation"),
        ({**BOOT16, "chargePointVendor": "x" * 21}, "TypeConstraintViolation"),
        ({"chargePointVendor": "V"}, "ProtocolError"),
    ],
)
def test_request_errors_map_to_ocpp_codes(payload: dict[str, Any], code: str) -> None:
    with pytest.raises(OCPPError) as raised:
        Validators("ocpp1.6").request("BootNotification", payload)
    assert raised.value.code == code


def test_valid_payloads_pass_and_formats_are_left_to_the_gateway_checks() -> None:
    Validators("ocpp1.6").request("BootNotification", BOOT16)
    Validators("ocpp2.0.1").request("Heartbeat", {})  # 2.x schemas are named ...Request.json
    Validators("ocpp1.6").response("Heartbeat", {"currentTime": "not checked here"})


@pytest.mark.parametrize("version", ["ocpp2.0.1", "ocpp2.1"])
def test_a_whole_float_is_not_an_integer_in_any_version(version: str) -> None:
    status = {"timestamp": "2026-01-01T00:00:00Z", "connectorStatus": "Available", "connectorId": 1}
    Validators(version).request("StatusNotification", {**status, "evseId": 1})
    with pytest.raises(OCPPError) as raised:
        Validators(version).request("StatusNotification", {**status, "evseId": 1.0})
    assert raised.value.code == "TypeConstraintViolation"


def test_an_action_without_schema_is_not_implemented() -> None:
    with pytest.raises(OCPPError) as raised:
        Validators("ocpp2.1").request("FlyToTheMoon", {})
    assert raised.value.code == "NotImplemented"


@pytest.mark.parametrize(
    ("version", "action", "payload", "path"),
    [
        (
            "ocpp2.0.1",
            "TransactionEvent",
            {
                "eventType": "Started",
                "timestamp": "2026-01-01T00:00:00Z",
                "triggerReason": "Authorized",
                "seqNo": 0,
                "transactionInfo": {"transactionId": "t"},
                "evse": {"id": 2**40},
            },
            "evse.id",
        ),
        (
            "ocpp2.1",
            "MeterValues",
            {
                "evseId": 1,
                "meterValue": [
                    {
                        "timestamp": "2026-01-01T00:00:00Z",
                        "sampledValue": [
                            {"value": 1, "unitOfMeasure": {"multiplier": -(2**31) - 1}}
                        ],
                    }
                ],
            },
            "meterValue[0].sampledValue[0].unitOfMeasure.multiplier",
        ),
        (
            "ocpp1.6",
            "StatusNotification",
            {"connectorId": 99999999999999999999999, "errorCode": "NoError", "status": "Available"},
            "connectorId",
        ),
        ("ocpp1.6", "LogStatusNotification", {"status": "Idle", "requestId": 2**31}, "requestId"),
    ],
)
def test_integers_beyond_32_bits_are_refused(
    version: str, action: str, payload: dict[str, Any], path: str
) -> None:
    with pytest.raises(OCPPError) as raised:
        Validators(version).request(action, payload)
    assert raised.value.code == "PropertyConstraintViolation"
    assert raised.value.description.startswith(f"{path} is beyond the 32 bits")


def test_32_bit_integers_numbers_and_1_6_registers_pass() -> None:
    start = {"connectorId": 1, "idTag": "T", "meterStart": 10**15, "timestamp": "x"}
    Validators("ocpp1.6").request("StartTransaction", start)  # bounded by MAX_WH there
    Validators("ocpp1.6").request(
        "StopTransaction", {"transactionId": 2**31 - 1, "meterStop": 2**40, "timestamp": "x"}
    )
    sample = {"value": 10**22, "unitOfMeasure": {"multiplier": -(2**31)}}  # value: a number
    Validators("ocpp2.0.1").request(
        "MeterValues", {"evseId": 0, "meterValue": [{"timestamp": "x", "sampledValue": [sample]}]}
    )
    # customData may carry anything: the ledger never reads it.
    Validators("ocpp2.0.1").request("Heartbeat", {"customData": {"vendorId": "v", "n": 2**70}})
