"""Sessions held back from invoicing until a person decides, and revisions delivered again."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

from chargeledger.core import codec
from chargeledger.core.events import Event, Invoice, ReviewDecision, SessionEvent
from chargeledger.core.log_port import Position
from chargeledger.invoicing.invoices import InvoiceProcessor, IssuerState
from chargeledger.invoicing.tariff import load_tariff
from tests.revisions import session_revision

FLAGGED = session_revision(
    "CP:1", revision=3, flags=("meter_went_backwards",), review_required=True
)


def decision(kind: str, revision: int = 3, session_id: str = "CP:1") -> ReviewDecision:
    return ReviewDecision(
        event_id=f"review:{kind}:{revision}",
        session_id=session_id,
        session_revision=revision,
        decision=kind,
        reviewer="finance",
        decided_at=datetime(2026, 6, 2, tzinfo=UTC),
        note="checked",
    )


def run(events: list[Event]) -> tuple[list[Invoice], IssuerState]:
    processor = InvoiceProcessor(load_tariff(None), issuer="CL", codec=codec)
    state = processor.initial_state()
    out: list[Invoice] = []
    for i, event in enumerate(events):
        assert processor.state_key(event) == "CL"  # every input folds into the issuer's state
        state = processor.load_state(json.loads(json.dumps(processor.dump_state(state))))
        state, documents = processor.evolve(state, event, Position("invoicing.completions", 0, i))
        out += [d for d in documents if isinstance(d, Invoice)]
    return out, state


def test_a_flagged_session_is_held_until_released_then_invoiced_once() -> None:
    invoices, state = run([FLAGGED])
    assert invoices == [] and state.held == {"CP:1": "needs review: meter_went_backwards"}
    invoices, state = run([FLAGGED, decision("release"), decision("release")])
    [invoice] = invoices
    assert invoice.session_id == "CP:1" and invoice.invoice_number == "CL-2026-000001"
    assert invoice.total_incl_vat == "4.64"  # 10 kWh at 0.39 + 19 % VAT, billed as it is
    assert state.held == {}


def test_a_dismissed_session_is_never_invoiced() -> None:
    invoices, state = run([FLAGGED, decision("dismiss"), decision("release")])
    assert invoices == [] and state.held == {}


def test_a_decision_on_another_revision_than_the_one_held_changes_nothing() -> None:
    newer = replace(FLAGGED, revision=4, event_id="CP:1:4", energy_wh=11_000)
    invoices, state = run([FLAGGED, newer, decision("release", revision=3)])
    assert invoices == [] and "CP:1" in state.held
    invoices, _ = run([FLAGGED, newer, decision("release", revision=4)])
    assert [i.energy_wh for i in invoices] == [11_000]


def test_a_held_session_whose_next_revision_is_clean_is_invoiced() -> None:
    clean = replace(session_revision("CP:1", revision=4), energy_wh=9_000)
    invoices, state = run([FLAGGED, clean])
    assert [i.energy_wh for i in invoices] == [9_000] and state.held == {}


def test_revisions_delivered_again_do_not_bill_again() -> None:
    # A crash between publishing and clearing the outbox delivers r1, r2, then r1, r2 again.
    r1 = session_revision("CP:1", revision=1)
    r2 = session_revision("CP:1", energy_wh=12_000)
    invoices, _ = run([r1, r2, r1, r2])
    assert [(i.document_type, i.energy_wh) for i in invoices] == [
        ("invoice", 10_000),
        ("credit_note", 10_000),
        ("invoice", 12_000),
    ]


def test_a_session_still_active_is_not_held() -> None:
    active: SessionEvent = session_revision("CP:2", status="active")
    invoices, state = run([replace(active, review_required=True)])
    assert invoices == [] and state.held == {}


def test_a_session_measured_by_interval_readings_only_is_invoiced_without_a_stop_reading() -> None:
    intervals = replace(
        session_revision("CS:1"),
        meter_start_wh=None,
        meter_stop_wh=None,
        flags=("energy_from_intervals",),
    )
    [invoice], state = run([intervals])
    assert (invoice.energy_wh, invoice.meter_start_wh, invoice.meter_stop_wh) == (
        10_000,
        None,
        None,
    )
    assert invoice.total_incl_vat == "4.64" and state.held == {}
