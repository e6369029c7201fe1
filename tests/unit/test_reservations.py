"""Reservations: from ReserveNow and the transaction that uses it, to reservation time on the
CDR, priced by the tariff's RESERVATION (used) or RESERVATION_EXPIRES (expired) elements."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from chargeledger.core import codec
from chargeledger.core.events import Invoice, SessionEvent
from chargeledger.core.log_port import Position
from chargeledger.invoicing.cdrs import cdr_skeleton
from chargeledger.invoicing.invoices import InvoiceProcessor
from chargeledger.invoicing.pricing import price
from chargeledger.invoicing.tariffs import parse_tariff
from chargeledger.ledger.sessions import SessionsProcessor
from tests.fold import fold
from tests.ledger_scenarios import Cp, register, ts
from tests.unit.test_signed_invoices import final

TOKEN = {"idToken": "T", "type": "ISO14443"}
EXPIRED = {"reservationUpdateStatus": "Expired"}
RESERVE_16 = {"connectorId": 1, "expiryDate": ts(0, 11), "idTag": "TAG", "reservationId": 5}
TARIFF = json.loads(
    """{"country_code": "DE", "party_id": "CLG", "id": "R", "currency": "EUR",
  "elements": [
    {"price_components": [{"type": "TIME", "price": 1.00, "step_size": 60}],
     "restrictions": {"reservation": "RESERVATION"}},
    {"price_components": [{"type": "FLAT", "price": 3.00, "step_size": 1},
                          {"type": "TIME", "price": 4.00, "step_size": 60}],
     "restrictions": {"reservation": "RESERVATION_EXPIRES"}},
    {"price_components": [{"type": "ENERGY", "price": 0.50, "step_size": 1}]}
  ], "last_updated": "2026-01-01T00:00:00Z"}""",
    parse_float=Decimal,
)


def reserved_session(status: str = "Accepted", *, cancel: bool = False) -> Cp:
    # Accepted at 11:30 by the gateway's clock, half an hour before the gateway receives the
    # start (12:00, tests.ledger_scenarios.RECEIVED_AT); the station's clock says 10:00.
    cp = Cp("CP-R").boot().command("ReserveNow", RESERVE_16, {"status": status}, ts(30, 11))
    if cancel:
        cp.command("CancelReservation", {"reservationId": 5}, {"status": "Accepted"}, ts(40, 11))
    return (
        cp.start(1, 1000, ts(0), reservation=5)
        .meter(1, ts(30), register("6000"))
        .stop(1, 11_000, ts(0, 11))
    )


def test_a_transaction_that_names_an_accepted_reservation_used_it() -> None:
    session = final(reserved_session())
    assert session.reservation_id == 5
    assert session.reserved_at == datetime(2026, 5, 1, 11, 30, tzinfo=UTC)
    cdr = cdr_skeleton(session)
    # Half an hour measured on the gateway's clock, placed before the start on the station's.
    assert cdr.start_date_time == datetime(2026, 5, 1, 9, 30, tzinfo=UTC)
    first = cdr.charging_periods[0]
    assert [(d.type, d.volume) for d in first.dimensions] == [("RESERVATION_TIME", Decimal("0.5"))]

    priced = price(cdr, parse_tariff(TARIFF), UTC)
    # Half an hour reserved at 1.00/h (RESERVATION, not the expiry's 4.00/h and 3.00 fee),
    # then 10 kWh at 0.50.
    assert priced.total_reservation_cost.excl_vat == Decimal("0.5000")
    assert priced.total_cost.excl_vat == Decimal("5.5000")
    assert priced.total_time_h == Decimal("1.0000")  # the session's own hour


def test_a_refused_or_cancelled_reservation_is_not_billed() -> None:
    for cp in (reserved_session("Occupied"), reserved_session(cancel=True)):
        session = final(cp)
        assert (session.reservation_id, session.reserved_at) == (None, None)
        assert cdr_skeleton(session).start_date_time == session.started_at


def test_a_2_x_transaction_uses_its_reservation() -> None:
    token = {"idToken": "T", "type": "ISO14443"}
    reserve = {"id": 7, "expiryDateTime": ts(0, 11), "idToken": token}
    session = final(
        Cp("CS-R", "ocpp2.0.1")
        .command("ReserveNow", reserve, {"status": "Accepted"}, ts(50, 9))
        .event("Started", "T1", 0, ts(0), token="T", reservation=7)
        .event("Ended", "T1", 1, ts(30))
    )
    assert session.reservation_id == 7
    assert session.reserved_at == datetime(2026, 5, 1, 9, 50, tzinfo=UTC)


def test_a_reservation_without_charging_expired_and_is_priced_by_its_own_elements() -> None:
    start = datetime(2026, 5, 1, 9, 30, tzinfo=UTC)
    cdr = cdr_skeleton(final(reserved_session()))
    expired = cdr.model_copy(
        update={
            "charging_periods": cdr.charging_periods[:1],
            "end_date_time": start + timedelta(minutes=30),
        }
    )
    priced = price(expired, parse_tariff(TARIFF), UTC)
    assert priced.total_reservation_cost.excl_vat == Decimal("5.0000")  # 3.00 + 0.5 h at 4.00


def test_an_invoice_has_a_reservation_line() -> None:
    processor = InvoiceProcessor(parse_tariff(TARIFF), issuer="CL", codec=codec)
    state = processor.initial_state()
    _, [invoice] = processor.evolve(state, final(reserved_session()), Position("c", 0, 0))
    lines = [(line.description, line.quantity, line.amount_excl_vat) for line in invoice.lines]  # type: ignore[union-attr]
    assert ("Reservation time", "0.5000", "0.50") in lines
    cdr = json.loads(invoice.cdr)  # type: ignore[union-attr]
    assert cdr["start_date_time"] == "2026-05-01T09:30:00Z"
    assert cdr["charging_periods"][0]["dimensions"] == [{"type": "RESERVATION_TIME", "volume": 0.5}]


def sessions_of(cp: Cp) -> dict[str, SessionEvent]:
    """The last revision of every session the frames produce."""
    outputs = fold(SessionsProcessor(), cp.frames)[1]
    return {o.session_id: o for o in outputs if isinstance(o, SessionEvent)}


def received(cp: Cp, when: str) -> Cp:
    """The last CALL and its answer, as received by the gateway at ``when``."""
    moment = datetime.fromisoformat(when)
    cp.frames[-2:] = [dataclasses.replace(f, received_at=moment) for f in cp.frames[-2:]]
    return cp


def test_a_1_6_reservation_that_passes_its_expiry_unused_is_billed_as_expired() -> None:
    reserve = {**RESERVE_16, "expiryDate": ts(0, 10)}
    cp = (
        Cp("CP-X")
        .boot()
        .command("ReserveNow", reserve, {"status": "Accepted"}, ts(30, 9))
        .status("Reserved", ts(31, 9))
    )
    assert sessions_of(received(cp, ts(31, 9))) == {}  # still reserved
    # The station's clock runs ahead: its 10:02 is 09:59 at the gateway, before the expiry.
    assert sessions_of(received(cp.status("Available", ts(2, 10)), ts(59, 9))) == {}
    received(cp.status("Available", ts(3, 10)), ts(0, 10))
    [expired] = sessions_of(cp).values()
    assert expired.session_id.startswith("CP-X:reservation-5-")
    assert (expired.status, expired.stop_reason) == ("completed", "ReservationExpired")
    assert (expired.energy_wh, expired.id_tag, expired.review_required) == (0, "TAG", False)
    assert expired.started_at == expired.reserved_at == datetime(2026, 5, 1, 9, 30, tzinfo=UTC)
    assert expired.stopped_at == datetime(2026, 5, 1, 10, 0, tzinfo=UTC)

    processor = InvoiceProcessor(parse_tariff(TARIFF), issuer="CL", codec=codec)
    _, [invoice] = processor.evolve(processor.initial_state(), expired, Position("c", 0, 0))
    assert isinstance(invoice, Invoice)
    # RESERVATION_EXPIRES: a 3.00 fee and half an hour at 4.00 (not RESERVATION's 1.00/h).
    assert invoice.total_excl_vat == "5.00"
    assert [line.description for line in invoice.lines] == ["Reservation fee", "Reservation time"]


def test_a_2_x_reservation_the_station_reports_expired_is_billed_and_removed_is_not() -> None:
    token = {"idToken": "T", "type": "ISO14443"}
    cp = Cp("CS-X", "ocpp2.0.1")
    for n in (1, 2):
        reserve = {"id": n, "expiryDateTime": ts(0, 10), "idToken": token}
        cp.command("ReserveNow", reserve, {"status": "Accepted"}, ts(30, 9))
    cp.call("ReservationStatusUpdate", {"reservationId": 1, "reservationUpdateStatus": "Expired"})
    cp.call("ReservationStatusUpdate", {"reservationId": 2, "reservationUpdateStatus": "Removed"})
    [expired] = sessions_of(cp).values()
    assert expired.session_id.startswith("CS-X:reservation-1-") and expired.id_tag == "T"


def test_the_same_reservation_id_used_again_is_another_reservation() -> None:
    cp = Cp("CS-Y", "ocpp2.0.1")
    reserve = {
        "id": 3,
        "expiryDateTime": ts(0, 10),
        "idToken": {"idToken": "T", "type": "ISO14443"},
    }
    for _ in range(2):
        cp.command("ReserveNow", reserve, {"status": "Accepted"}, ts(30, 9))
        cp.call(
            "ReservationStatusUpdate", {"reservationId": 3, "reservationUpdateStatus": "Expired"}
        )
    assert len(sessions_of(cp)) == 2


def test_an_expired_reservation_the_tariff_does_not_charge_for_is_not_invoiced() -> None:
    cp = Cp("CS-Z", "ocpp2.0.1")
    reserve = {
        "id": 4,
        "expiryDateTime": ts(0, 10),
        "idToken": {"idToken": "T", "type": "ISO14443"},
    }
    cp.command("ReserveNow", reserve, {"status": "Accepted"}, ts(30, 9))
    cp.call("ReservationStatusUpdate", {"reservationId": 4, **EXPIRED})
    [expired] = sessions_of(cp).values()
    energy_only = {**TARIFF, "elements": TARIFF["elements"][2:], "min_price": {"excl_vat": 2}}
    processor = InvoiceProcessor(parse_tariff(energy_only), issuer="CL", codec=codec)
    _, documents = processor.evolve(processor.initial_state(), expired, Position("c", 0, 0))
    assert documents == []
