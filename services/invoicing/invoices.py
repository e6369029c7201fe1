"""Invoices from completed sessions: a pure fold over the completion sequence.

One invoice per completed session, numbered ``{issuer}-{year}-{000001}`` without gaps per issuer
and year (the year of the session's stop time, UTC), in the order completions were recorded on
``invoicing.completions`` (``sequence.py``), so the same log always gives the same numbers.
A session flagged for review is not invoiced: an invoice, once issued, is final. When a later
revision of an invoiced session bills differently (late meter values, a corrected stop), a
credit note cancels the invoice and a new invoice replaces it: new documents, never updates.

The session's CDR (``cdrs.cdr_skeleton``) is priced by the OCPI engine (``pricing.price``) with
the tariff version valid at the session's start on its connector (``tariffs.tariff_at``), or the
default tariff where none is assigned. Invoice lines group the priced periods by dimension, unit
price and VAT; each line's net amount is rounded half-up to the currency's minor unit, and its
VAT is computed on that rounded amount.

Tariffs, meter keys and station time zones are reference data the processor folds from the
log's config streams (``catalogue.py``), read to their end before each batch. They are
append-only and never retroactive (an assignment or version applies from when it was stored, or
later), so a session is priced with the same tariff live, on any replay, and from the topics
alone.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from ..core.events import (
    COMPLETIONS,
    RESERVATION_EXPIRED,
    Event,
    Invoice,
    InvoiceLine,
    ReviewDecision,
    SessionEvent,
    SignedValue,
)
from ..core.log_port import Position
from ..core.processor import EventCodec, Processor
from .catalogue import REFERENCE_STREAMS, TariffCatalogue
from .cdr_json import dumps, priced_cdr
from .cdrs import cdr_skeleton, reservation_start
from .meter_keys import MeterKey, key_at
from .ocmf import embedded_key, key_conflict, meter_serial, signed_energy_wh, verify
from .ocpi import Tariff
from .pricing import Line, PricedCdr, price
from .station_zones import zone_at
from .tariff import round_money
from .tariffs import parse_tariff, tariff_at

_DESCRIPTIONS = {
    "FLAT": ("Start fee", "session"),
    "ENERGY": ("Energy", "kWh"),
    "TIME": ("Charging time", "h"),
    "PARKING_TIME": ("Parking time", "h"),
    "RESERVATION": ("Reservation time", "h"),
    "RESERVATION_FLAT": ("Reservation fee", "reservation"),
}
_QUANTUM = {"kWh": Decimal("0.001"), "h": Decimal("0.0001")}


@dataclass(slots=True)
class IssuerState:
    last_number: dict[str, int] = field(default_factory=dict)  # year -> last sequence issued
    invoiced: dict[str, str] = field(default_factory=dict)  # session id -> current invoice
    # session id -> [digest of what was billed, currency, total excl., VAT, total incl., and
    # the energy, meter start and stop, start and stop times billed] (all as text)
    billed: dict[str, list[str]] = field(default_factory=dict)
    # session id -> why it is held (flags that need review, or signed meter values that do
    # not back what would be billed), and the held revision (Avro, base64) a reviewer decides on
    held: dict[str, str] = field(default_factory=dict)
    held_sessions: dict[str, str] = field(default_factory=dict)
    # session id -> the newest revision handled: an older one, delivered again, changes nothing
    revisions: dict[str, int] = field(default_factory=dict)


class InvoiceProcessor(Processor[IssuerState]):
    name = "invoicing-invoices"
    input_stream = COMPLETIONS
    reference_streams = REFERENCE_STREAMS

    def __init__(
        self, default_tariff: Tariff, *, issuer: str, codec: EventCodec, zone: tzinfo = UTC
    ) -> None:
        self._default = default_tariff
        self._codec = codec  # a held revision is kept in the state as Avro
        self._issuer = issuer
        self._zone = zone
        self.catalogue = TariffCatalogue()
        self._parsed: dict[tuple[str, int], Tariff] = {}
        self._zones: dict[str, tzinfo] = {}

    def refer(self, event: Event) -> None:
        self.catalogue.add(event)

    def state_key(self, event: Event) -> str | None:
        return self._issuer if isinstance(event, SessionEvent | ReviewDecision) else None

    def state_keys(self, event: Event) -> tuple[str, ...]:
        """The issuer's numbers, and what is known of the event's session: each stored on its
        own, so a batch reads and writes only the sessions it touches, however many were
        invoiced before."""
        if not isinstance(event, SessionEvent | ReviewDecision):
            return ()
        return (self._issuer, f"{self._issuer}/{event.session_id}")

    def keep_cached(self, key: str) -> bool:
        """The issuer's numbers only: most sessions are billed once, and their states are read
        again only for a late revision or a review decision."""
        return key == self._issuer

    def evolve_all(
        self, states: dict[str, IssuerState], event: Event, position: Position
    ) -> tuple[dict[str, IssuerState], list[Event]]:
        """``evolve`` on a view of the issuer's state holding just this session, split again:
        the numbers go back to the issuer's key, the session's entries to its own."""
        keys = self.state_keys(event)
        if not keys:
            return {}, []
        assert isinstance(event, SessionEvent | ReviewDecision)
        issuer_key, session_key = keys
        issuer, session = states[issuer_key], states[session_key]
        sid = event.session_id
        view = IssuerState(
            issuer.last_number,
            *(
                {sid: part[sid]} if sid in part else {}
                for part in (
                    _merged(issuer.invoiced, session.invoiced, sid),
                    _merged(issuer.billed, session.billed, sid),
                    _merged(issuer.held, session.held, sid),
                    _merged(issuer.held_sessions, session.held_sessions, sid),
                    _merged(issuer.revisions, session.revisions, sid),
                )
            ),
        )
        new, outputs = self.evolve(view, event, position)
        # What an earlier version kept in the issuer's state moves to the session's key once
        # the session is touched.
        numbers = replace(_unhold(issuer, sid), last_number=new.last_number)
        numbers = replace(
            numbers,
            invoiced=_without(numbers.invoiced, sid),
            billed=_without(numbers.billed, sid),
            revisions=_without(numbers.revisions, sid),
        )
        return {issuer_key: numbers, session_key: replace(new, last_number={})}, outputs

    def initial_state(self) -> IssuerState:
        return IssuerState()

    def dump_state(self, state: IssuerState) -> dict[str, Any]:
        return {
            "last_number": state.last_number,
            "invoiced": state.invoiced,
            "billed": state.billed,
            "held": state.held,
            "held_sessions": state.held_sessions,
            "revisions": state.revisions,
        }

    def load_state(self, data: dict[str, Any]) -> IssuerState:
        return IssuerState(
            dict(data.get("last_number", {})),
            dict(data.get("invoiced", {})),
            dict(data.get("billed", {})),
            dict(data.get("held", {})),
            dict(data.get("held_sessions", {})),
            dict(data.get("revisions", {})),
        )

    def evolve(
        self, state: IssuerState, event: Event, position: Position
    ) -> tuple[IssuerState, list[Event]]:
        if isinstance(event, ReviewDecision):
            return self.decide(state, event)
        if not isinstance(event, SessionEvent) or event.status != "completed":
            return state, []
        if event.stopped_at is None:
            return state, []
        if event.revision <= state.revisions.get(event.session_id, -1):
            return state, []  # an older revision, or this one again (republished)
        state = replace(state, revisions={**state.revisions, event.session_id: event.revision})
        if event.review_required:
            # Held until a person looks at its figures: an invoice, once issued, is final.
            return self._hold(state, event, "needs review: " + ", ".join(event.flags)), []
        signature = signed_evidence(event, self.catalogue.meter_keys)
        if signature.hold_reason is not None:
            # Not billed while its own meter's signatures say otherwise: held for review.
            return self._hold(state, event, signature.hold_reason), []
        return self.issue(state, event, signature)

    def decide(
        self, state: IssuerState, decision: ReviewDecision
    ) -> tuple[IssuerState, list[Event]]:
        """A reviewer's decision on the revision held: release bills it as it is (signature
        status and flags as they are), dismiss drops it. Decisions on anything else (an older
        revision, a session no longer held, a repeated decision) change nothing."""
        raw = state.held_sessions.get(decision.session_id)
        if raw is None:
            return state, []
        session = self._codec.decode(base64.b64decode(raw))
        if not isinstance(session, SessionEvent) or session.revision != decision.session_revision:
            return state, []
        if decision.decision == "release":
            return self.issue(state, session, signed_evidence(session, self.catalogue.meter_keys))
        if decision.decision == "dismiss":
            return _unhold(state, session.session_id), []
        return state, []

    def issue(
        self, state: IssuerState, event: SessionEvent, signature: SignedEvidence
    ) -> tuple[IssuerState, list[Event]]:
        """Invoice a completed session, or, when it was invoiced differently before, cancel
        that invoice with a credit note and issue a new one."""
        assert event.stopped_at is not None
        draft = replace(
            self.invoice("", event),
            signature_status=signature.status,
            signed_energy_wh=signature.energy_wh,
        )
        if event.stop_reason == RESERVATION_EXPIRED and not draft.lines:
            return state, []  # the tariff does not charge for reservations: nothing to bill
        digest = _digest(draft)
        previous = state.invoiced.get(event.session_id)
        billed = state.billed.get(event.session_id)
        if previous is not None and (billed is None or billed[0] == digest):
            # Already invoiced as it is (or invoiced before corrections existed).
            return _unhold(state, event.session_id), []
        year = str(event.stopped_at.year)
        numbers = dict(state.last_number)
        documents: list[Event] = []

        def next_number() -> str:
            numbers[year] = numbers.get(year, 0) + 1
            return f"{self._issuer}-{year}-{numbers[year]:06d}"

        if previous is not None and billed is not None:
            # A late change to an invoiced session: cancel the invoice, then issue a new one.
            documents.append(self.credit_note(next_number(), previous, billed, event))
        number = next_number()
        documents.append(
            replace(
                self.invoice(number, event),
                signature_status=signature.status,
                signed_energy_wh=signature.energy_wh,
                signed_values=signature.values,
                replaces=previous,
            )
        )
        # Only now, with the documents made, does the state change (a new state, not the old).
        state = replace(
            _unhold(state, event.session_id),
            last_number=numbers,
            invoiced={**state.invoiced, event.session_id: number},
            billed={
                **state.billed,
                event.session_id: [
                    digest,
                    draft.currency,
                    draft.total_excl_vat,
                    draft.total_vat,
                    draft.total_incl_vat,
                    str(draft.energy_wh),
                    "" if draft.meter_start_wh is None else str(draft.meter_start_wh),
                    "" if draft.meter_stop_wh is None else str(draft.meter_stop_wh),
                    draft.started_at.isoformat(),
                    draft.stopped_at.isoformat(),
                ],
            },
        )
        return state, documents

    def credit_note(
        self, number: str, cancels: str, billed: list[str], session: SessionEvent
    ) -> Invoice:
        """Cancels an invoice: its amounts, negated, on a document of its own, with the figures
        the cancelled invoice billed (energy, meter readings, times)."""
        assert session.stopped_at is not None
        _, currency, excl, vat, incl, *was = billed
        energy_wh, meter_start_wh, meter_stop_wh = (
            session.energy_wh,
            session.meter_start_wh,
            session.meter_stop_wh,
        )
        started_at, stopped_at = session.started_at, session.stopped_at
        if was:  # invoiced by a version that kept them
            energy_wh = int(was[0])
            meter_start_wh = int(was[1]) if was[1] else None
            meter_stop_wh = int(was[2]) if was[2] else None
            started_at = datetime.fromisoformat(was[3])
            stopped_at = datetime.fromisoformat(was[4])
        negated = [str(-Decimal(amount)) for amount in (excl, vat, incl)]
        line = InvoiceLine(
            description=f"Cancels invoice {cancels}",
            quantity="1",
            unit="invoice",
            unit_price_excl_vat=negated[0],
            vat_rate_percent="",
            amount_excl_vat=negated[0],
            vat_amount=negated[1],
            amount_incl_vat=negated[2],
        )
        return Invoice(
            event_id=f"invoice:{number}",
            invoice_number=number,
            issuer=self._issuer,
            session_id=session.session_id,
            station_id=session.station_id,
            connector_id=session.connector_id,
            transaction_id=session.transaction_id,
            transaction_ref=session.transaction_ref,
            id_tag=session.id_tag,
            started_at=started_at,
            stopped_at=stopped_at,
            meter_start_wh=meter_start_wh,
            meter_stop_wh=meter_stop_wh,
            energy_wh=energy_wh,
            tariff_id="",
            currency=currency,
            lines=(line,),
            total_excl_vat=negated[0],
            total_vat=negated[1],
            total_incl_vat=negated[2],
            source_event_id=session.event_id,
            document_type="credit_note",
            cancels=cancels,
        )

    def _hold(self, state: IssuerState, session: SessionEvent, reason: str) -> IssuerState:
        encoded = base64.b64encode(self._codec.encode(session)).decode("ascii")
        return replace(
            state,
            held={**state.held, session.session_id: reason},
            held_sessions={**state.held_sessions, session.session_id: encoded},
        )

    def tariff_for(self, session: SessionEvent) -> tuple[Tariff, str, dict[str, Any]]:
        """The tariff that prices the session, how it is named on the invoice, and its OCPI
        document."""
        stored = tariff_at(
            session.started_at,
            session.station_id,
            session.evse_id,
            session.connector_id,
            self.catalogue.assignments,
            self.catalogue.versions,
            session.start_received_at,
        )
        if stored is None:
            return self._default, self._default.id, self._default.model_dump(exclude_none=True)
        key = (stored.tariff_id, stored.revision)
        if key not in self._parsed:
            self._parsed[key] = parse_tariff(stored.document)
        return self._parsed[key], f"{stored.tariff_id}#{stored.revision}", stored.document

    def zone_for(self, session: SessionEvent) -> tzinfo:
        """The station's time zone at the session's start, or the configured default."""
        name = zone_at(
            self.catalogue.zones, session.station_id, session.started_at, session.start_received_at
        )
        if name is None:
            return self._zone
        if name not in self._zones:
            self._zones[name] = ZoneInfo(name)
        return self._zones[name]

    def invoice(self, invoice_number: str, session: SessionEvent) -> Invoice:
        assert session.stopped_at is not None
        tariff, tariff_name, document = self.tariff_for(session)
        priced = price(cdr_skeleton(session), tariff, self.zone_for(session))
        cdr = ""
        if invoice_number:  # the CDR names its invoice: made once the number is known
            header = _cdr_header(invoice_number, session, tariff)
            cdr = dumps(priced_cdr(header, document, priced))
        lines = invoice_lines(priced)
        total_excl = sum((Decimal(line.amount_excl_vat) for line in lines), Decimal(0))
        total_vat = sum((Decimal(line.vat_amount) for line in lines), Decimal(0))
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
            tariff_id=tariff_name,
            currency=tariff.currency,
            lines=lines,
            total_excl_vat=str(total_excl),
            total_vat=str(total_vat),
            total_incl_vat=str(total_excl + total_vat),
            source_event_id=session.event_id,
            cdr=cdr,
        )


def _merged(older: dict[str, Any], newer: dict[str, Any], key: str) -> dict[str, Any]:
    return newer if key in newer else older


def _without(entries: dict[str, Any], key: str) -> dict[str, Any]:
    return entries if key not in entries else {k: v for k, v in entries.items() if k != key}


def _unhold(state: IssuerState, session_id: str) -> IssuerState:
    if session_id not in state.held and session_id not in state.held_sessions:
        return state
    return replace(
        state,
        held={k: v for k, v in state.held.items() if k != session_id},
        held_sessions={k: v for k, v in state.held_sessions.items() if k != session_id},
    )


def _cdr_header(invoice_number: str, session: SessionEvent, tariff: Tariff) -> dict[str, Any]:
    """The OCPI CDR fields that do not come from pricing."""
    assert session.stopped_at is not None
    connector = str(session.connector_id)
    evse = f"{session.station_id}*{session.evse_id if session.evse_id is not None else connector}"
    return {
        "country_code": tariff.country_code,
        "party_id": tariff.party_id,
        "id": invoice_number,
        # OCPI: the start of the reservation the session used, if any, else of the session.
        "start_date_time": reservation_start(session) or session.started_at,
        "end_date_time": session.stopped_at,
        "session_id": session.session_id[-36:],
        "cdr_token": {
            "country_code": tariff.country_code,
            "party_id": tariff.party_id,
            "uid": session.id_tag or "",
            "type": "RFID" if session.id_token_type in (None, "ISO14443", "ISO15693") else "OTHER",
            "contract_id": session.id_tag or "",
        },
        "auth_method": "WHITELIST",
        "cdr_location": {
            "id": session.station_id,
            "evse_uid": evse,
            "evse_id": evse,
            "connector_id": connector,
        },
        "last_updated": session.stopped_at,
    }


@dataclass(frozen=True)
class SignedEvidence:
    status: str  # verified, unverified, invalid, or none (no signed values)
    energy_wh: int | None  # end minus begin reading of the signed import register, if signed
    hold_reason: str | None
    values: tuple[SignedValue, ...] = ()  # each record, with the key it was checked with


def signed_evidence(session: SessionEvent, keys: Sequence[MeterKey] = ()) -> SignedEvidence:
    """What the meter's own signatures say about the session, and whether that holds it. Each
    record is checked with the key registered for its meter at the session's start; the key the
    station sent along (with the record, or in its fourth section) is used only for a station
    without any registered key. Records of one session that verify with different keys, or
    come with different keys, show a key change: invalid."""
    if not session.signed_data:
        return SignedEvidence("none", None, None)
    known = session.start_received_at
    station_has_keys = any(
        k.station_id == session.station_id and (known is None or k.registered_at <= known)
        for k in keys
    )
    sent = [
        (session.signed_data_keys[n] if n < len(session.signed_data_keys) else "")
        or session.meter_public_key
        for n in range(len(session.signed_data))
    ]
    results = []
    for record, sent_key in zip(session.signed_data, sent, strict=True):
        registered = key_at(
            keys, session.station_id, meter_serial(record), session.started_at, known
        )
        if registered is not None:
            key: str | None = registered.public_key
        elif station_has_keys:
            # The station's meters are registered, and not this one (or not at this start
            # time): a key the station sends along proves nothing.
            key = None
        else:
            key = sent_key or embedded_key(record)
        results.append(verify(record, key))
    values = tuple(
        SignedValue(record, r.public_key)
        for record, r in zip(session.signed_data, results, strict=True)
    )
    conflict = key_conflict(results, sent)
    if conflict is not None:
        return SignedEvidence("invalid", None, f"invalid signed meter value: {conflict}", values)
    if any(r.status == "invalid" for r in results):
        reasons = "; ".join(r.reason for r in results if r.status == "invalid")
        return SignedEvidence("invalid", None, f"invalid signed meter value: {reasons}", values)
    status = "verified" if all(r.status == "verified" for r in results) else "unverified"
    energy = signed_energy_wh([reading for r in results for reading in r.readings])
    if energy is None:
        return SignedEvidence(status, None, None, values)
    signed = int(energy.to_integral_value(rounding=ROUND_HALF_UP))
    if abs(energy - session.energy_wh) >= 1:
        reason = f"signed meter values show {energy} Wh, the session {session.energy_wh} Wh"
        return SignedEvidence(status, signed, reason, values)
    return SignedEvidence(status, signed, None, values)


def _digest(draft: Invoice) -> str:
    """What an invoice bills, apart from its number: a change means a correction."""
    content = (
        draft.lines,
        draft.total_excl_vat,
        draft.total_vat,
        draft.total_incl_vat,
        draft.currency,
        draft.tariff_id,
        draft.started_at,
        draft.stopped_at,
        draft.energy_wh,
        draft.meter_start_wh,
        draft.meter_stop_wh,
        draft.id_tag,
        draft.signature_status,
        draft.signed_energy_wh,
    )
    return hashlib.blake2b(repr(content).encode(), digest_size=12).hexdigest()


def invoice_lines(priced: PricedCdr) -> tuple[InvoiceLine, ...]:
    """One line per dimension, unit price and VAT rate, in the order they were first used."""
    groups: dict[tuple[str, Decimal, Decimal | None], list[Line]] = {}
    for line in priced.lines:
        groups.setdefault((line.dimension, line.unit_price, line.vat_percent), []).append(line)
    out = []
    currency = priced.currency
    for (dimension, unit_price, vat), members in groups.items():
        description, unit = _DESCRIPTIONS[dimension]
        quantity = sum((m.billed_quantity for m in members), Decimal(0))
        net = round_money(
            sum((m.billed_quantity * unit_price for m in members), Decimal(0)), currency
        )
        out.append(
            _line(description, _quantity(quantity, unit), unit, unit_price, vat, net, currency)
        )
    adjustment = priced.price_limit_adjustment
    if adjustment.excl_vat != 0 or adjustment.incl_vat != 0:
        raised = adjustment.excl_vat > 0 or (adjustment.excl_vat == 0 and adjustment.incl_vat > 0)
        description = "Minimum price" if raised else "Maximum price"
        # The line takes the invoice to the limit exactly, rounding of the other lines included.
        target_excl = round_money(priced.total_cost.excl_vat, currency)
        target_vat = round_money(priced.total_cost.incl_vat, currency) - target_excl
        net = target_excl - sum((Decimal(line.amount_excl_vat) for line in out), Decimal(0))
        vat_amount = target_vat - sum((Decimal(line.vat_amount) for line in out), Decimal(0))
        out.append(
            InvoiceLine(
                description=description,
                quantity="1",
                unit="session",
                unit_price_excl_vat=str(net),
                vat_rate_percent="",
                amount_excl_vat=str(net),
                vat_amount=str(vat_amount),
                amount_incl_vat=str(net + vat_amount),
            )
        )
    return tuple(out)


def _quantity(value: Decimal, unit: str) -> str:
    quantum = _QUANTUM.get(unit)
    return str(value.quantize(quantum)) if quantum else str(value.normalize())


def _line(
    description: str,
    quantity: str,
    unit: str,
    unit_price: Decimal,
    vat: Decimal | None,
    net: Decimal,
    currency: str,
) -> InvoiceLine:
    vat_amount = round_money(net * vat / 100, currency) if vat is not None else Decimal(0)
    return InvoiceLine(
        description=description,
        quantity=quantity,
        unit=unit,
        unit_price_excl_vat=str(unit_price),
        vat_rate_percent="" if vat is None else str(vat),  # empty: no VAT applies (not 0 %)
        amount_excl_vat=str(net),
        vat_amount=str(vat_amount),
        amount_incl_vat=str(net + vat_amount),
    )
