"""Which OCPP requests stations send and which ChargeLedger sends them, per version."""

from __future__ import annotations

from importlib import resources
from typing import Any

import pytest
from ocpp.routing import create_route_map

from chargeledger.gateway.actions import COMMAND_ACTIONS, STATION_ACTIONS
from chargeledger.gateway.ocpp2 import CentralSystem21, CentralSystem201
from chargeledger.gateway.ocpp16 import CentralSystem16

CENTRAL_SYSTEMS: dict[str, Any] = {
    "ocpp1.6": CentralSystem16,
    "ocpp2.0.1": CentralSystem201,
    "ocpp2.1": CentralSystem21,
}
FOLDERS = {"ocpp1.6": "v16", "ocpp2.0.1": "v201", "ocpp2.1": "v21"}


@pytest.mark.parametrize("version", CENTRAL_SYSTEMS)
def test_the_central_system_answers_every_request_a_station_sends(version: str) -> None:
    central_system = CENTRAL_SYSTEMS[version]
    handled = {str(action) for action in create_route_map(central_system.__new__(central_system))}
    assert handled == STATION_ACTIONS[version]


def test_the_issue_s_commands_are_there() -> None:
    assert {
        "ClearCache",
        "ClearChargingProfile",
        "GetCompositeSchedule",
        "GetDiagnostics",
        "GetLocalListVersion",
        "SendLocalList",
        "SetChargingProfile",
        "UpdateFirmware",
        "DataTransfer",
        # the security extension
        "CertificateSigned",
        "DeleteCertificate",
        "ExtendedTriggerMessage",
        "GetInstalledCertificateIds",
        "GetLog",
        "InstallCertificate",
        "SignedUpdateFirmware",
        # and what was there before
        "RemoteStartTransaction",
        "ReserveNow",
    } <= COMMAND_ACTIONS["ocpp1.6"]
    for version in ("ocpp2.0.1", "ocpp2.1"):
        assert {
            "SetChargingProfile",
            "GetCompositeSchedule",
            "GetChargingProfiles",
            "SendLocalList",
            "UpdateFirmware",
            "GetLog",
            "GetBaseReport",
            "GetReport",
            "SetNetworkProfile",
            "CustomerInformation",
            "RequestStartTransaction",
        } <= COMMAND_ACTIONS[version]
    assert {"SetDefaultTariff", "UpdateDynamicSchedule"} <= COMMAND_ACTIONS["ocpp2.1"]


@pytest.mark.parametrize("version", COMMAND_ACTIONS)
def test_every_command_is_a_request_with_a_schema_and_no_station_message(version: str) -> None:
    folder = resources.files("ocpp").joinpath(FOLDERS[version], "schemas")
    suffix = "" if version == "ocpp1.6" else "Request"
    for action in COMMAND_ACTIONS[version]:
        assert folder.joinpath(f"{action}{suffix}.json").is_file(), action
        assert folder.joinpath(f"{action}Response.json").is_file(), action
    # Only DataTransfer goes both ways.
    assert COMMAND_ACTIONS[version] & STATION_ACTIONS[version] == {"DataTransfer"}
