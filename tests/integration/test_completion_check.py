"""``replay --verify`` checks the recorded completion order against the rebuilt sessions: a
revision recorded but not rebuilt, rebuilt but not recorded, or rebuilt with other content is
reported; one delivered twice is not."""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool

from chargeledger.core import codec
from chargeledger.core.events import COMPLETIONS, SESSIONS, SessionEvent
from chargeledger.core.log import PostgresLog
from chargeledger.core.log_port import Record
from chargeledger.invoicing.sequence import completed
from chargeledger.replay import Difference, _check_completions
from tests.revisions import session_revision


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
            session_revision("same"),
            session_revision("twice"),
            session_revision("twice"),  # published again after a restart
            session_revision("only-recorded"),
            session_revision("other-energy", energy_wh=10_000),
        ],
        rebuilt=[
            session_revision("same"),
            session_revision("twice"),
            session_revision("only-rebuilt"),
            session_revision("other-energy", energy_wh=12_000),
            session_revision("active", status="active"),
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
    sessions = [session_revision(f"s{n}", energy_wh=1_000 * n) for n in range(1, 50)]
    await log_of(
        pool,
        recorded=sessions,
        rebuilt=[*reversed(sessions), session_revision("open", status="active")],
    )

    assert await _check_completions(pool) == []
    assert await _check_completions(pool) == []  # the check leaves nothing behind to trip on
