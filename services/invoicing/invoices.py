"""Invoices from completed sessions: a pure fold over ``ledger.sessions``.

One invoice per completed session, numbered ``{issuer}-{year}-{000001}`` without gaps per issuer
and year (the year of the session's stop time, UTC), in the order completions appear on the log.
A session flagged for review is not invoiced: an invoice, once issued, is final.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..core.events import SESSIONS, Event, Invoice, InvoiceLine, SessionEvent
from ..core.log import Position
from ..core.runtime import Processor
from .tariff import Tariff, price_energy


@dataclass(slots=True)
class IssuerState:
    last_number: dict[str, int] = field(default_factory=dict)  # year -> last sequence issued
    invoiced: dict[str, str] = field(default_factory=dict)  # session id -> invoice number


class InvoiceProcessor(Processor[IssuerState]):
    name = "invoicing-invoices"
    input_stream = SESSIONS

    def __init__(self, tariff: Tariff, *, issuer: str) -> None:
        self._tariff = tariff
        self._issuer = issuer

    def state_key(self, event: Event) -> str | None:
        return self._issuer if isinstance(event, SessionEvent) else None

    def initial_state(self) -> IssuerState:
        return IssuerState()

    def dump_state(self, state: IssuerState) -> dict[str, Any]:
        return {"last_number": state.last_number, "invoiced": state.invoiced}

    def load_state(self, data: dict[str, Any]) -> IssuerState:
        return IssuerState(dict(data.get("last_number", {})), dict(data.get("invoiced", {})))

    def evolve(
        self, state: IssuerState, event: Event, position: Position
    ) -> tuple[IssuerState, list[Event]]:
        if not isinstance(event, SessionEvent) or event.status != "completed":
            return state, []
        if event.review_required:
            return state, []  # held until its figures are reviewed: an invoice is final
        if event.session_id in state.invoiced:
            return state, []
        if event.stopped_at is None or event.meter_stop_wh is None:
            return state, []
        year = str(event.stopped_at.year)
        number = state.last_number.get(year, 0) + 1
        invoice = self.invoice(f"{self._issuer}-{year}-{number:06d}", event)
        # Only now, with the invoice made, does the state change (a new state, not the old one).
        state = IssuerState(
            {**state.last_number, year: number},
            {**state.invoiced, event.session_id: invoice.invoice_number},
        )
        return state, [invoice]

    def invoice(self, invoice_number: str, session: SessionEvent) -> Invoice:
        assert session.stopped_at is not None and session.meter_stop_wh is not None
        charge = price_energy(self._tariff, session.energy_wh)
        line = InvoiceLine(
            description="Energy",
            quantity=str(charge.quantity_kwh),
            unit="kWh",
            unit_price_excl_vat=str(charge.unit_price_excl_vat),
            vat_rate_percent=str(charge.vat_rate_percent),
            amount_excl_vat=str(charge.amount_excl_vat),
            vat_amount=str(charge.vat_amount),
            amount_incl_vat=str(charge.amount_incl_vat),
        )
        return Invoice(
            event_id=f"invoice:{invoice_number}",
            invoice_number=invoice_number,
            issuer=self._issuer,
            session_id=session.session_id,
            station_id=session.station_id,
            connector_id=session.connector_id,
            transaction_id=session.transaction_id,
            transaction_ref=session.transaction_ref,
            id_tag=session.id_tag,
            started_at=session.started_at,
            stopped_at=session.stopped_at,
            meter_start_wh=session.meter_start_wh,
            meter_stop_wh=session.meter_stop_wh,
            energy_wh=session.energy_wh,
            tariff_id=self._tariff.id,
            currency=self._tariff.currency,
            lines=(line,),
            total_excl_vat=str(charge.amount_excl_vat),
            total_vat=str(charge.vat_amount),
            total_incl_vat=str(charge.amount_incl_vat),
            source_event_id=session.event_id,
        )
