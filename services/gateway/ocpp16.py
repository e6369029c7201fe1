"""OCPP 1.6J: answers to every CALL a charge point sends, the security extension's included
(built on the ``ocpp`` library). Notifications are acknowledged: the frame is in the log, which
is what the ledger reads."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ocpp import routing
from ocpp.v16 import ChargePoint, call_result
from ocpp.v16.datatypes import IdTagInfo
from ocpp.v16.enums import Action, DataTransferStatus

from ..core.meter import MAX_INT32, MAX_WH
from . import checks
from .admission import Registration
from .routing import FastRouting
from .services import StationServices
from .signing import CertificateSigning
from .transaction_ids import request_key

Handler = TypeVar("Handler", bound=Callable[..., Any])


def on(action: str) -> Callable[[Handler], Handler]:
    """``ocpp.routing.on`` with types: registers the handler of one OCPP action."""
    # Payloads are validated by the gateway's compiled validators (validation.py), not here.
    register: Callable[[Handler], Handler] = routing.on(action, skip_schema_validation=True)
    return register


def after(action: str) -> Callable[[Handler], Handler]:
    """``ocpp.routing.after`` with types: runs once the answer to the action is sent."""
    register: Callable[[Handler], Handler] = routing.after(action)
    return register


class CentralSystem16(FastRouting, CertificateSigning, ChargePoint):  # type: ignore[misc]
    """One station's connection. Every frame passes through the logged connection first."""

    actions = frozenset(Action)

    def __init__(
        self,
        station_id: str,
        connection: Any,
        *,
        services: StationServices,
        registration: Registration,
    ) -> None:
        super().__init__(station_id, connection)
        self._services = services
        self._registration = registration
        self._signed = {}

    async def _id_tag_info(self, id_tag: str) -> IdTagInfo:
        verdict = await self._services.tokens.verdict(id_tag)
        expiry = verdict.expires_at
        return IdTagInfo(
            status=verdict.status_16,
            parent_id_tag=verdict.group_id,
            expiry_date=self._services.ocpp_time(expiry) if expiry is not None else None,
        )

    @on(Action.boot_notification)
    async def on_boot_notification(self, **_: Any) -> call_result.BootNotification:
        s = self._services
        status = await s.admission.answer_boot(self.id)
        self._registration.status = status
        return call_result.BootNotification(
            current_time=s.ocpp_time(),
            interval=s.heartbeat_interval_s if status == "Accepted" else s.boot_retry_interval_s,
            status=status,
        )

    @on(Action.heartbeat)
    def on_heartbeat(self) -> call_result.Heartbeat:
        return call_result.Heartbeat(current_time=self._services.ocpp_time())

    @on(Action.status_notification)
    def on_status_notification(self, **_: Any) -> call_result.StatusNotification:
        return call_result.StatusNotification()

    @on(Action.authorize)
    async def on_authorize(self, id_tag: str) -> call_result.Authorize:
        return call_result.Authorize(id_tag_info=await self._id_tag_info(id_tag))

    @on(Action.start_transaction)
    async def on_start_transaction(
        self, call_unique_id: str, **payload: Any
    ) -> call_result.StartTransaction:
        # What is confirmed must be billable: refuse what the ledger could not record.
        checks.in_range("connectorId", payload["connector_id"], 1, MAX_INT32)
        checks.in_range("meterStart", payload["meter_start"], 0, MAX_WH)
        checks.printable("idTag", payload["id_tag"])
        checks.timestamp("timestamp", payload["timestamp"])
        id_tag_info = await self._id_tag_info(payload["id_tag"])
        # A refused token still gets a transaction id: the station has started (or will stop)
        # the transaction and must be able to report it.
        transaction_id = await self._services.transaction_ids.allocate(
            self.id, request_key(call_unique_id, payload)
        )
        return call_result.StartTransaction(transaction_id=transaction_id, id_tag_info=id_tag_info)

    @on(Action.stop_transaction)
    async def on_stop_transaction(
        self,
        transaction_id: int,
        meter_stop: int,
        timestamp: str,
        id_tag: str | None = None,
        transaction_data: list[dict[str, Any]] | None = None,
        **_: Any,
    ) -> call_result.StopTransaction:
        checks.in_range("transactionId", transaction_id, 0, MAX_INT32)
        checks.in_range("meterStop", meter_stop, 0, MAX_WH)
        checks.timestamp("timestamp", timestamp)
        checks.meter_value_times("transactionData", transaction_data or [])
        if id_tag is None:
            return call_result.StopTransaction()
        return call_result.StopTransaction(id_tag_info=await self._id_tag_info(id_tag))

    @on(Action.meter_values)
    def on_meter_values(
        self,
        connector_id: int,
        meter_value: list[dict[str, Any]],
        transaction_id: int | None = None,
        **_: Any,
    ) -> call_result.MeterValues:
        checks.in_range("connectorId", connector_id, 0, MAX_INT32)
        if transaction_id is not None:
            checks.in_range("transactionId", transaction_id, 0, MAX_INT32)
        checks.meter_value_times("meterValue", meter_value)
        return call_result.MeterValues()

    @on(Action.data_transfer)
    def on_data_transfer(self, vendor_id: str, **_: Any) -> call_result.DataTransfer:
        # No vendor extensions are known yet; the spec's answer for that is UnknownVendorId.
        return call_result.DataTransfer(status=DataTransferStatus.unknown_vendor_id)

    @on(Action.diagnostics_status_notification)
    def on_diagnostics_status_notification(
        self, **_: Any
    ) -> call_result.DiagnosticsStatusNotification:
        return call_result.DiagnosticsStatusNotification()

    @on(Action.firmware_status_notification)
    def on_firmware_status_notification(self, **_: Any) -> call_result.FirmwareStatusNotification:
        return call_result.FirmwareStatusNotification()

    # The security extension (OCPP 1.6 security whitepaper).

    @on(Action.security_event_notification)
    def on_security_event_notification(self, **_: Any) -> call_result.SecurityEventNotification:
        return call_result.SecurityEventNotification()

    @on(Action.log_status_notification)
    def on_log_status_notification(self, **_: Any) -> call_result.LogStatusNotification:
        return call_result.LogStatusNotification()

    @on(Action.signed_firmware_status_notification)
    def on_signed_firmware_status_notification(
        self, **_: Any
    ) -> call_result.SignedFirmwareStatusNotification:
        return call_result.SignedFirmwareStatusNotification()

    @on(Action.sign_certificate)
    def on_sign_certificate(
        self, csr: str, call_unique_id: str, **_: Any
    ) -> call_result.SignCertificate:
        refusal = self._refusal(call_unique_id, csr)
        return call_result.SignCertificate(status="Rejected" if refusal else "Accepted")

    @after(Action.sign_certificate)
    async def after_sign_certificate(self, call_unique_id: str, **_: Any) -> None:
        await self._deliver(call_unique_id)
