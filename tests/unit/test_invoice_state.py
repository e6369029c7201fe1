"""Invoicing keeps its numbers in one small state and what it knows of each session in a state
of its own, so a batch reads and writes only the sessions it touches."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from chargeledger.core import codec
from chargeledger.core.events import Event, ReviewDecision
from chargeledger.core.log_port import Position
from chargeledger.invoicing.invoices import InvoiceProcessor, IssuerState
from chargeledger.invoicing.tariff import load_tariff
from tests.revisions import session_revision


def events() -> list[Event]:
    a1 = session_revision("CP:1", revision=1)
    a2 = session_revision("CP:1", energy_wh=12_000)
    b1 = session_revision("CP:2", revision=1)
    c1 = session_revision("CP:3", revision=1, flags=("meter_went_backwards",), review_required=True)
    release = ReviewDecision(
        event_id="review:1",
        session_id="CP:3",
        session_revision=1,
        decision="release",
        reviewer="ann",
        decided_at=datetime(2026, 6, 2, tzinfo=UTC),
    )
    return [a1, b1, c1, a2, a1, release, b1]  # a correction, a repeat, a held session released


def roundtrip(processor: InvoiceProcessor, state: IssuerState) -> IssuerState:
    return processor.load_state(json.loads(json.dumps(processor.dump_state(state))))


def whole(processor: InvoiceProcessor, items: list[Event]) -> tuple[list[Event], IssuerState]:
    state, out = processor.initial_state(), []
    for i, event in enumerate(items):
        state, documents = processor.evolve(roundtrip(processor, state), event, Position("c", 0, i))
        out += documents
    return out, state


def keyed(
    processor: InvoiceProcessor, items: list[Event], states: dict[str, IssuerState] | None = None
) -> tuple[list[Event], dict[str, IssuerState]]:
    """As the runtime folds: each state loaded from storage by key, and stored back."""
    states, out = dict(states or {}), []
    for i, event in enumerate(items):
        mine = {
            k: roundtrip(processor, states[k]) if k in states else processor.initial_state()
            for k in processor.state_keys(event)
        }
        new, documents = processor.evolve_all(mine, event, Position("c", 0, i))
        states.update(new)
        out += documents
    return out, states


def test_keyed_states_issue_the_same_documents_and_keep_the_issuer_state_small() -> None:
    processor = InvoiceProcessor(load_tariff(None), issuer="CL", codec=codec)
    expected, _ = whole(processor, events())
    documents, states = keyed(processor, events())
    assert documents == expected
    assert [d.invoice_number for d in documents] == [  # type: ignore[union-attr]
        "CL-2026-000001",
        "CL-2026-000002",
        "CL-2026-000003",
        "CL-2026-000004",
        "CL-2026-000005",
    ]
    assert processor.dump_state(states["CL"]) == {
        "last_number": {"2026": 5},
        "invoiced": {},
        "billed": {},
        "held": {},
        "held_sessions": {},
        "revisions": {},
    }
    assert sorted(states) == ["CL", "CL/CP:1", "CL/CP:2", "CL/CP:3"]
    assert states["CL/CP:1"].invoiced == {"CP:1": "CL-2026-000004"}  # replaced 000001


def test_the_state_of_an_earlier_version_moves_to_session_keys_as_sessions_are_touched() -> None:
    processor = InvoiceProcessor(load_tariff(None), issuer="CL", codec=codec)
    items = events()
    expected, _ = whole(processor, items)
    first, old_whole = whole(processor, items[:3])  # all in one state, as before
    rest, states = keyed(processor, items[3:], {"CL": old_whole})
    assert first + rest == expected
    assert "CP:1" not in states["CL"].invoiced and "CP:2" not in states["CL"].billed
