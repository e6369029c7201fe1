"""OCPP 1.6's transactions: StartTransaction, StopTransaction (with its transactionData) and
StatusNotification (charging periods, and reservations that expired unused). Pure: no I/O."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from ..core.meter import parse_timestamp
from .session_state import earliest, readable_time
from .session_step import Step


class Ocpp16Step(Step):
    def _start_16(self, request: dict[str, Any], answer: dict[str, Any]) -> None:
        if "transactionId" not in answer:
            return
        transaction_id = int(answer["transactionId"])
        session = self._session(str(transaction_id), transaction_id=transaction_id)
        if session is None or session.started_at is not None:
            return  # a retransmitted StartTransaction got the same id: nothing new
        started_at = parse_timestamp(request["timestamp"])
        session = replace(
            session,
            connector_id=int(request["connectorId"]),
            id_tag=request.get("idTag"),
            started_at=started_at,
            start_received_at=self.frame.received_at,
            meter_start_wh=int(request["meterStart"]),
            seen_at=earliest(session.seen_at, started_at),
        )
        session = self._use_reservation(session, request.get("reservationId"))
        self._put(session)
        self._close_others(session)

    def _stop_16(self, request: dict[str, Any]) -> None:
        transaction_id = int(request["transactionId"])
        session = self._session(str(transaction_id), transaction_id=transaction_id)
        if session is None:
            return
        session = self._absorb(session, request.get("transactionData"))
        if session.stopped_at is None:
            stopped_at = parse_timestamp(request["timestamp"])
            session = replace(
                session,
                stopped_at=stopped_at,
                meter_stop_wh=int(request["meterStop"]),
                stop_reason=request.get("reason") or "Local",
                seen_at=earliest(session.seen_at, stopped_at),
            )
        self._put(session)

    def _status(self, request: dict[str, Any]) -> None:
        if "connectorStatus" in request:
            return  # 2.x: the charging state comes with TransactionEvent
        # Optional in 1.6, and no billing date: one the ledger cannot read is the receive time.
        at = readable_time(request.get("timestamp")) or self.frame.received_at
        connector = (None, int(request.get("connectorId", 0)))
        for s in list(self.state.sessions.values()):
            if s.runs_at(connector, at):
                self._put(replace(s, states={**s.states, at: str(request.get("status"))}))
        # 1.6 says nothing when a reservation expires; the connector's next status received at
        # or after the expiry time shows it passed unused.
        for key, kept in list(self.state.reservations.items()):
            if (
                kept[1] is not None
                # The expiry is the central system's time: compared with the gateway's clock,
                # never the station's, which may run ahead.
                and self.frame.received_at >= datetime.fromisoformat(kept[1])
                and (kept[4] in (None, 0) or kept[4] == connector[1] or connector[1] == 0)
                and request.get("status") != "Reserved"
            ):
                self._expire(key, at)
