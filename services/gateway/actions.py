"""Who sends which OCPP request, per version: what stations send (every one is answered) and
what ChargeLedger may send them (commands).

Commands are every request of the version the ``ocpp`` library has schemas for, except the ones
only stations send; DataTransfer goes both ways.
"""

from __future__ import annotations

from ocpp import v16, v21, v201

_STATION_201 = frozenset(
    {
        "Authorize",
        "BootNotification",
        "ClearedChargingLimit",
        "DataTransfer",
        "FirmwareStatusNotification",
        "Get15118EVCertificate",
        "GetCertificateStatus",
        "Heartbeat",
        "LogStatusNotification",
        "MeterValues",
        "NotifyChargingLimit",
        "NotifyCustomerInformation",
        "NotifyDisplayMessages",
        "NotifyEVChargingNeeds",
        "NotifyEVChargingSchedule",
        "NotifyEvent",
        "NotifyMonitoringReport",
        "NotifyReport",
        "PublishFirmwareStatusNotification",
        "ReportChargingProfiles",
        "ReservationStatusUpdate",
        "SecurityEventNotification",
        "SignCertificate",
        "StatusNotification",
        "TransactionEvent",
    }
)

# Requests a station sends (CALLs; 2.1's NotifyPeriodicEventStream is a SEND, never answered).
STATION_ACTIONS: dict[str, frozenset[str]] = {
    "ocpp1.6": frozenset(
        {
            "Authorize",
            "BootNotification",
            "DataTransfer",
            "DiagnosticsStatusNotification",
            "FirmwareStatusNotification",
            "Heartbeat",
            "MeterValues",
            "StartTransaction",
            "StatusNotification",
            "StopTransaction",
            # the security extension (OCPP 1.6 security whitepaper)
            "LogStatusNotification",
            "SecurityEventNotification",
            "SignCertificate",
            "SignedFirmwareStatusNotification",
        }
    ),
    "ocpp2.0.1": _STATION_201,
    "ocpp2.1": _STATION_201
    | {
        "BatterySwap",
        "ClosePeriodicEventStream",
        "GetCertificateChainStatus",
        "NotifyDERAlarm",
        "NotifyDERStartStop",
        "NotifyPriorityCharging",
        "NotifySettlement",
        "OpenPeriodicEventStream",
        "PullDynamicScheduleUpdate",
        "ReportDERControl",
        "VatNumberValidation",
    },
}

_LIBRARY_ACTIONS: dict[str, frozenset[str]] = {
    "ocpp1.6": frozenset(map(str, v16.enums.Action)),
    "ocpp2.0.1": frozenset(map(str, v201.enums.Action)),
    "ocpp2.1": frozenset(map(str, v21.enums.Action)),
}

COMMAND_ACTIONS: dict[str, frozenset[str]] = {
    version: (actions - STATION_ACTIONS[version]) | {"DataTransfer"}
    for version, actions in _LIBRARY_ACTIONS.items()
}
