"""OCPP 2.0.1 and 2.1's transactions: TransactionEvent Started, Updated and Ended, deduplicated by
seqNo. Pure: no I/O."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..core.meter import parse_timestamp
from .session_state import earliest
from .session_step import Step


class Ocpp2Step(Step):
    def _transaction_event(self, request: dict[str, Any]) -> None:
        info = request.get("transactionInfo") or {}
        ref = str(info.get("transactionId", ""))
        session = self._session(ref)
        if session is None or not ref:
            return
        seq_no = int(request.get("seqNo", 0))
        if seq_no in session.seq_nos:
            return  # the same event again
        at = parse_timestamp(request["timestamp"])
        kind = request.get("eventType")
        evse = request.get("evse") or {}
        id_token = request.get("idToken") or {}
        session = replace(
            session,
            seq_nos=session.seq_nos | {seq_no},
            last_event_at=at if session.last_event_at is None else max(session.last_event_at, at),
            seen_at=earliest(session.seen_at, at),
            evse_id=int(evse["id"]) if "id" in evse else session.evse_id,
            connector_id=int(evse["connectorId"])
            if "connectorId" in evse
            else session.connector_id,
            id_tag=session.id_tag or id_token.get("idToken"),
            id_token_type=session.id_token_type or id_token.get("type"),
        )
        if "chargingState" in info:
            session = replace(session, states={**session.states, at: str(info["chargingState"])})
        session = self._absorb(session, request.get("meterValue"))
        session = self._use_reservation(session, request.get("reservationId"))
        if kind == "Started" and session.started_at is None:
            session = replace(
                session,
                started_at=at,
                start_seq_no=seq_no,
                start_received_at=self.frame.received_at,
            )
            self._put(session)
            session = self._close_others(session)
        elif kind == "Ended" and session.stopped_at is None:
            session = replace(
                session,
                stopped_at=at,
                end_seq_no=seq_no,
                stop_reason=info.get("stoppedReason") or "Local",
            )
        self._put(session)
