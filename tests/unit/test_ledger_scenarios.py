"""The ledger scenario table on the pure fold, and redelivery as a property."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from chargeledger.core.events import Event, Frame, SessionEvent
from chargeledger.core.log_port import Position
from chargeledger.ledger.energy import NEEDS_REVIEW
from chargeledger.ledger.sessions import SessionsProcessor
from tests.fold import fold as folded
from tests.ledger_scenarios import SCENARIOS, Cp, Expect, Scenario, ts
from tests.unit.test_sessions import whole_stations


def _named(name: str) -> Scenario:
    return next(s for s in SCENARIOS if s.name == name)


def fold(
    frames: list[Frame], *, persist_between: bool = True, batch_sizes: Sequence[int] = (1,)
) -> list[Event]:
    return folded(
        SessionsProcessor(), frames, persist_between=persist_between, batch_sizes=batch_sizes
    )[1]


def final_sessions(outputs: list[Event]) -> dict[str, SessionEvent]:
    latest: dict[str, SessionEvent] = {}
    for out in outputs:
        if isinstance(out, SessionEvent):
            if out.session_id in latest:
                assert out.revision > latest[out.session_id].revision
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
    got = final_sessions(fold(with_copies(frames, repeats)))
    assert {k: figures(v) for k, v in got.items()} == {k: figures(v) for k, v in expected.items()}


def with_copies(frames: list[Frame], repeats: list[tuple[int, int]]) -> list[Frame]:
    """The log with stretches of it logged again (retransmitted or redelivered): each
    ``(at, source)`` puts everything from ``source`` to ``at`` again right after the original
    of ``at``. A copy always comes after its original (nothing is logged before it happened)."""
    noisy = list(range(len(frames)))
    for at, source in repeats:
        start, end = sorted((source % len(frames), at % len(frames)))
        position = noisy.index(end) + 1
        noisy[position:position] = range(start, end + 1)
    return [frames[i] for i in noisy]


@settings(max_examples=80, deadline=None)
@given(
    st.sampled_from(SCENARIOS),
    st.lists(st.integers(1, 12), min_size=1, max_size=8),
    st.lists(st.tuples(st.integers(0, 200), st.integers(0, 200)), max_size=3),
)
# A message logged twice, the copy in the same batch or the next: the session stays active.
@example(_named("1.6 stop and meter values for transactions the ledger never saw"), [3], [(3, 2)])
def test_batches_of_any_size_give_the_same_revisions_where_it_counts(
    scenario: Scenario, batch_sizes: list[int], repeats: list[tuple[int, int]]
) -> None:
    """A batch publishes one revision per active session: the last revision of every session,
    and every revision that ends one (which invoicing bills), are the same however the log
    (copies included) is cut into batches."""
    frames = with_copies(scenario.build("CP-1"), repeats)
    expected = fold(frames)
    got = fold(frames, batch_sizes=batch_sizes)
    assert final_sessions(got) == final_sessions(expected)
    assert ended(got) == ended(expected)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(SCENARIOS), st.integers(0, 200))
def test_a_batch_processed_again_changes_nothing(scenario: Scenario, start: int) -> None:
    """The same log entries folded again into the state that has them (a batch processed twice,
    as by two consumers around a Kafka rebalance): no new revision, no other state."""
    frames = scenario.build("CP-1")
    processor = SessionsProcessor()
    states, _ = folded(processor, frames, batch_sizes=[len(frames)])
    if not states:
        return
    [state] = whole_stations(states).values()
    again = state
    outputs: list[Event] = []
    for n in range(start % len(frames), len(frames)):
        again, out = processor.evolve(again, frames[n], Position("ocpp.frames", 0, n))
        outputs += out
    again, out = processor.settle("CP-1", again)
    assert [o for o in [*outputs, *out] if isinstance(o, SessionEvent)] == []
    assert processor.dump_state(again)["sessions"] == processor.dump_state(state)["sessions"]


def ended(outputs: list[Event]) -> list[SessionEvent]:
    return [o for o in outputs if isinstance(o, SessionEvent) and o.status != "active"]


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
