"""OCPP 2.0.1 and 2.1: answers to every request a charging station can send.

Requests that only report something (notifications) are acknowledged: the frame is in the log,
which is what the ledger reads. SignCertificate is signed by the CSMS's CA where one is
configured (``signing.py``). Requests for services ChargeLedger does not offer yet (ISO 15118
certificates, smart charging schedules, VAT number checks, periodic event streams) are answered
with the status the protocol has for "not available", never with a silent Accepted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ocpp import v21, v201

from . import checks
from .admission import Registration
from .ocpp16 import after, on
from .routing import FastRouting
from .services import StationServices
from .signing import CertificateSigning

# Station-to-CSMS requests whose answer has no required content: acknowledged as logged.
ACKNOWLEDGED_201 = (
    "ClearedChargingLimit",
    "NotifyChargingLimit",
    "NotifyCustomerInformation",
    "NotifyDisplayMessages",
    "NotifyEvent",
    "NotifyMonitoringReport",
    "NotifyReport",
    "PublishFirmwareStatusNotification",
    "ReportChargingProfiles",
    "ReservationStatusUpdate",
    "SecurityEventNotification",
    "StatusNotification",
)
ACKNOWLEDGED_21 = (
    "BatterySwap",
    "ClosePeriodicEventStream",
    "NotifyDERAlarm",
    "NotifyDERStartStop",
    "NotifyPriorityCharging",
    "NotifySettlement",
    "ReportDERControl",
)

NOT_SUPPORTED = {"reason_code": "NotSupported"}


def _acknowledge(action: str) -> Callable[..., Any]:
    def acknowledge(self: Any, **_: Any) -> Any:
        return getattr(self._call_result, action)()

    # The library routes by the handler's name, recorded when it is decorated: name it first.
    acknowledge.__name__ = f"on_{action}"
    return on(action)(acknowledge)


class Ocpp2Answers(CertificateSigning):
    """Handlers shared by OCPP 2.0.1 and 2.1 (their common requests have the same shape)."""

    _call_result: Any
    id: str

    def __init__(
        self,
        station_id: str,
        connection: Any,
        *,
        services: StationServices,
        registration: Registration,
    ) -> None:
        # The next class in the MRO is the version's ocpp ChargePoint.
        super().__init__(station_id, connection)  # type: ignore[call-arg]
        self._services = services
        self._registration = registration
        self._signed = {}

    async def _id_token_info(self, id_token: dict[str, Any]) -> dict[str, Any]:
        if id_token.get("type") == "NoAuthorization":
            return {"status": "Accepted"}
        verdict = await self._services.tokens.verdict(id_token["id_token"])
        info: dict[str, Any] = {"status": verdict.status}
        if verdict.expires_at is not None:
            info["cache_expiry_date_time"] = self._services.ocpp_time(verdict.expires_at)
        if verdict.group_id is not None:
            info["group_id_token"] = {"id_token": verdict.group_id, "type": "Central"}
        return info

    @on("BootNotification")
    async def on_boot_notification(self, **_: Any) -> Any:
        s = self._services
        status = await s.admission.answer_boot(self.id)
        self._registration.status = status
        return self._call_result.BootNotification(
            current_time=s.ocpp_time(),
            interval=s.heartbeat_interval_s if status == "Accepted" else s.boot_retry_interval_s,
            status=status,
        )

    @on("Heartbeat")
    def on_heartbeat(self, **_: Any) -> Any:
        return self._call_result.Heartbeat(current_time=self._services.ocpp_time())

    @on("Authorize")
    async def on_authorize(self, id_token: dict[str, Any], **_: Any) -> Any:
        return self._call_result.Authorize(id_token_info=await self._id_token_info(id_token))

    @on("TransactionEvent")
    async def on_transaction_event(
        self,
        timestamp: str,
        transaction_info: dict[str, Any],
        id_token: dict[str, Any] | None = None,
        meter_value: list[dict[str, Any]] | None = None,
        **_: Any,
    ) -> Any:
        # What is confirmed must be billable: refuse what the ledger could not read.
        checks.not_empty("transactionInfo.transactionId", transaction_info["transaction_id"])
        checks.timestamp("timestamp", timestamp)
        checks.meter_value_times("meterValue", meter_value or [])
        if id_token is None:
            return self._call_result.TransactionEvent()
        return self._call_result.TransactionEvent(id_token_info=await self._id_token_info(id_token))

    @on("MeterValues")
    def on_meter_values(self, meter_value: list[dict[str, Any]], **_: Any) -> Any:
        checks.meter_value_times("meterValue", meter_value)
        return self._call_result.MeterValues()

    @on("DataTransfer")
    def on_data_transfer(self, **_: Any) -> Any:
        return self._call_result.DataTransfer(status="UnknownVendorId")

    @on("Get15118EVCertificate")
    def on_get_15118_ev_certificate(self, **_: Any) -> Any:
        return self._call_result.Get15118EVCertificate(
            status="Failed", exi_response="", status_info=NOT_SUPPORTED
        )

    @on("GetCertificateStatus")
    def on_get_certificate_status(self, **_: Any) -> Any:
        return self._call_result.GetCertificateStatus(status="Failed", status_info=NOT_SUPPORTED)

    @on("SignCertificate")
    def on_sign_certificate(
        self,
        csr: str,
        call_unique_id: str,
        certificate_type: str | None = None,
        request_id: int | None = None,
        **_: Any,
    ) -> Any:
        refusal = self._refusal(call_unique_id, csr, certificate_type, request_id)
        if refusal is None:
            return self._call_result.SignCertificate(status="Accepted")
        code = "NotSupported" if self._services.certificate_authority is None else "InvalidCSR"
        return self._call_result.SignCertificate(
            status="Rejected", status_info={"reason_code": code, "additional_info": refusal}
        )

    @after("SignCertificate")
    async def after_sign_certificate(self, call_unique_id: str, **_: Any) -> None:
        await self._deliver(call_unique_id)

    @on("FirmwareStatusNotification")
    def on_firmware_status_notification(self, **_: Any) -> Any:
        return self._call_result.FirmwareStatusNotification()

    @on("LogStatusNotification")
    def on_log_status_notification(self, **_: Any) -> Any:
        return self._call_result.LogStatusNotification()

    @on("NotifyEVChargingNeeds")
    def on_notify_ev_charging_needs(self, **_: Any) -> Any:
        return self._call_result.NotifyEVChargingNeeds(status="Rejected", status_info=NOT_SUPPORTED)

    @on("NotifyEVChargingSchedule")
    def on_notify_ev_charging_schedule(self, **_: Any) -> Any:
        return self._call_result.NotifyEVChargingSchedule(status="Accepted")


for _action in ACKNOWLEDGED_201:
    setattr(Ocpp2Answers, f"on_{_action}", _acknowledge(_action))


class CentralSystem201(FastRouting, Ocpp2Answers, v201.ChargePoint):  # type: ignore[misc]
    actions = frozenset(v201.enums.Action)


class CentralSystem21(FastRouting, Ocpp2Answers, v21.ChargePoint):  # type: ignore[misc]
    # SEND-only actions (NotifyPeriodicEventStream) are not CALLs and not listed here.
    actions = frozenset(v21.enums.Action)

    @on("GetCertificateChainStatus")
    def on_get_certificate_chain_status(
        self, certificate_status_requests: list[dict[str, Any]], **_: Any
    ) -> Any:
        now = self._services.ocpp_time()
        return self._call_result.GetCertificateChainStatus(
            certificate_status=[
                {
                    "certificate_hash_data": {
                        k: request["certificate_hash_data"][k]
                        for k in (
                            "hash_algorithm",
                            "issuer_name_hash",
                            "issuer_key_hash",
                            "serial_number",
                        )
                    },
                    "source": request["source"],
                    "status": "Failed",
                    "next_update": now,
                }
                for request in certificate_status_requests
            ]
        )

    @on("OpenPeriodicEventStream")
    def on_open_periodic_event_stream(self, **_: Any) -> Any:
        return self._call_result.OpenPeriodicEventStream(
            status="Rejected", status_info=NOT_SUPPORTED
        )

    @on("PullDynamicScheduleUpdate")
    def on_pull_dynamic_schedule_update(self, **_: Any) -> Any:
        return self._call_result.PullDynamicScheduleUpdate(
            status="Rejected", status_info=NOT_SUPPORTED
        )

    @on("VatNumberValidation")
    def on_vat_number_validation(self, vat_number: str, **_: Any) -> Any:
        return self._call_result.VatNumberValidation(
            vat_number=vat_number, status="Rejected", status_info=NOT_SUPPORTED
        )


for _action in ACKNOWLEDGED_21:
    setattr(CentralSystem21, f"on_{_action}", _acknowledge(_action))
