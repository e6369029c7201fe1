"""``replay --verify`` checks the recorded completion order against the rebuilt sessions: a
revision recorded but not rebuilt, rebuilt but not recorded, or rebuilt with other content is
reported; one delivered twice is not."""

from __future__ import annotations

from datetime import UTC, datetime

from psycopg_pool import AsyncConnectionPool

from chargeledger.core import codec
from chargeledger.core.events import COMPLETIONS, SESSIONS, SessionEvent
from chargeledger.core.log import PostgresLog
from chargeledger.core.log_port import Record
from chargeledger.invoicing.sequence import completed
from chargeledger.replay import Difference, _check_completions

STOPPED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def revision(
    session_id: str, *, energy_wh: int = 10_000, status: str = "completed"
) -> SessionEvent:
    return SessionEvent(
        event_id=f"{session_id}:2",
        session_id=session_id,
        revision=2,
        station_id="CP-1",
        connector_id=1,
        transaction_id=1,
        started_at=STOPPED,
        meter_start_wh=0,
        energy_wh=energy_wh,
        status=status,
        source_stream=SESSIONS,
        source_partition=0,
        source_offset=0,
        stopped_at=STOPPED if status == "completed" else None,
        meter_stop_wh=energy_wh if status == "completed" else None,
    )


async def log_of(
    pool: AsyncConnectionPool, recorded: list[SessionEvent], rebuilt: list[SessionEvent]
) -> None:
    log = PostgresLog(pool, partitions=1)
    await log.start()
    try:
        await log.append(
            [Record(COMPLETIONS, "completions", codec.encode(completed(s))) for s in recorded]
            + [Record(SESSIONS, s.station_id, codec.encode(s)) for s in rebuilt]
        )
    finally:
        await log.close()


async def test_each_way_the_sequence_and_the_sessions_can_disagree_is_reported(
    pool: AsyncConnectionPool,
) -> None:
    await log_of(
        pool,
        recorded=[
            revision("same"),
            revision("twice"),
            revision("twice"),  # published again after a restart
            revision("only-recorded"),
            revision("other-energy", energy_wh=10_000),
        ],
        rebuilt=[
            revision("same"),
            revision("twice"),
            revision("only-rebuilt"),
            revision("other-energy", energy_wh=12_000),
            revision("active", status="active"),
        ],
    )

    assert await _check_completions(pool) == [
        Difference(
            COMPLETIONS,
            missing=[("only-recorded:2",)],
            extra=[("only-rebuilt:2",)],
            changed=[("other-energy:2",)],
        )
    ]
    # While the live sequencer was behind, what it had not recorded yet is no difference.
    assert await _check_completions(pool, sequencer_behind=True) == [
        Difference(
            COMPLETIONS, missing=[("only-recorded:2",)], extra=[], changed=[("other-energy:2",)]
        )
    ]


async def test_the_same_revisions_on_both_sides_are_no_difference(
    pool: AsyncConnectionPool,
) -> None:
    sessions = [revision(f"s{n}", energy_wh=1_000 * n) for n in range(1, 50)]
    await log_of(
        pool, recorded=sessions, rebuilt=[*reversed(sessions), revision("open", status="active")]
    )

    assert await _check_completions(pool) == []
    assert await _check_completions(pool) == []  # the check leaves nothing behind to trip on
