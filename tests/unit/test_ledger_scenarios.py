"""The ledger scenario table on the pure fold, and redelivery as a property."""

from __future__ import annotations

import json
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chargeledger.core.events import Event, Frame, SessionEvent
from chargeledger.core.log_port import Position
from chargeledger.ledger.energy import NEEDS_REVIEW
from chargeledger.ledger.sessions import SessionsProcessor
from tests.ledger_scenarios import SCENARIOS, Cp, Expect, Scenario, ts


def fold(frames: list[Frame], *, persist_between: bool = True) -> list[Event]:
    processor = SessionsProcessor()
    state = processor.initial_state()
    outputs: list[Event] = []
    for offset, frame in enumerate(frames):
        if persist_between:  # the runner stores state as JSON between batches
            state = processor.load_state(json.loads(json.dumps(processor.dump_state(state))))
        state, out = processor.evolve(state, frame, Position("ocpp.frames", 0, offset))
        outputs += out
    return outputs


def final_sessions(outputs: list[Event]) -> dict[str, SessionEvent]:
    latest: dict[str, SessionEvent] = {}
    for out in outputs:
        if isinstance(out, SessionEvent):
            assert (
                out.revision == latest[out.session_id].revision + 1
                if out.session_id in latest
                else out.revision == 1
            )
            latest[out.session_id] = out
    return latest


def check(station: str, scenario: Scenario, got: dict[str, SessionEvent]) -> None:
    assert set(got) == {f"{station}:{ref}" for ref in scenario.sessions}, scenario.name
    for ref, expect in scenario.sessions.items():
        session = got[f"{station}:{ref}"]
        assert_session(session, expect)


def assert_session(session: SessionEvent, expect: Expect) -> None:
    assert (session.status, session.energy_wh, set(session.flags)) == (
        expect.status,
        expect.energy_wh,
        set(expect.flags),
    ), session.session_id
    review = expect.review if expect.review is not None else bool(expect.flags & NEEDS_REVIEW)
    assert session.review_required == review
    # The periods cover the session without gaps and add up to its energy.
    periods = session.charging_periods
    assert sum(p.energy_wh for p in periods) == session.energy_wh
    assert sum(h.energy_wh for h in session.energy_by_hour) == session.energy_wh
    for before, after in pairwise(periods):
        assert before.end == after.start
    if periods:
        assert periods[0].start == session.started_at
    if expect.periods is not None:
        assert tuple((p.state, p.energy_wh) for p in periods) == expect.periods


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_scenario(scenario: Scenario) -> None:
    check("CP-1", scenario, final_sessions(fold(scenario.build("CP-1"))))


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_scenario_state_kept_in_memory_gives_the_same_outputs(scenario: Scenario) -> None:
    frames = scenario.build("CP-1")
    assert fold(frames, persist_between=False) == fold(frames)


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(SCENARIOS),
    st.lists(st.tuples(st.integers(0, 200), st.integers(0, 200)), max_size=6),
)
def test_duplication_and_redelivery_give_the_same_sessions(
    scenario: Scenario, repeats: list[tuple[int, int]]
) -> None:
    """Any frame logged again later (a retransmission), or a stretch of the log processed again
    from the last commit (redelivery), ends in the same sessions and totals."""
    frames = scenario.build("CP-1")
    expected = final_sessions(fold(frames))
    # The log with copies, as the original index of each entry: a copy always comes after its
    # original (nothing is logged before it happened).
    noisy = list(range(len(frames)))
    for at, source in repeats:
        # Redeliver a stretch: everything from `source` to `at` again, right after the original
        # of `at`.
        start, end = sorted((source % len(frames), at % len(frames)))
        position = noisy.index(end) + 1
        noisy[position:position] = range(start, end + 1)
    got = final_sessions(fold([frames[i] for i in noisy]))
    assert {k: figures(v) for k, v in got.items()} == {k: figures(v) for k, v in expected.items()}


def figures(s: SessionEvent) -> tuple[object, ...]:
    return (
        s.status,
        s.energy_wh,
        s.flags,
        s.charging_periods,
        s.energy_by_hour,
        s.meter_start_wh,
        s.meter_stop_wh,
        s.stopped_at,
    )


def test_meter_values_without_usable_readings_for_an_unknown_transaction_make_no_session() -> None:
    signed = {"value": "AB12CD", "format": "SignedData", "context": "Sample.Periodic"}
    frames = Cp("CP-1").meter(99, ts(5), signed).frames
    outputs = fold(frames)
    assert outputs == []


def _order_free(scenario: Scenario) -> bool:
    """Scenarios made only of messages that name their transaction (and, in 2.x, their seqNo):
    their outcome must not depend on the order in which the messages arrive."""
    for frame in scenario.build("CP-1"):
        if frame.action in ("BootNotification", "StatusNotification", "TriggerMessage"):
            return False
        if (
            frame.action == "MeterValues"
            and frame.message_type == 2
            and '"transactionId"' not in frame.raw
        ):
            return False
    return True


ORDER_FREE = [s for s in SCENARIOS if _order_free(s)]


def test_most_scenarios_are_order_free() -> None:
    assert len(ORDER_FREE) >= 12


@settings(max_examples=80, deadline=None)
@given(st.sampled_from(ORDER_FREE), st.randoms(use_true_random=False))
def test_messages_arriving_in_any_order_give_the_same_sessions(
    scenario: Scenario, random: Any
) -> None:
    """Offline queues and retries deliver out of order: sessions follow the charge point's
    timestamps and seqNo, not arrival."""
    frames = scenario.build("CP-1")
    pairs = [frames[i : i + 2] for i in range(0, len(frames), 2)]
    shuffled = list(pairs)
    random.shuffle(shuffled)
    expected = final_sessions(fold(frames))
    got = final_sessions(fold([f for pair in shuffled for f in pair]))
    assert {k: (*figures(v), v.started_at) for k, v in got.items()} == {
        k: (*figures(v), v.started_at) for k, v in expected.items()
    }
