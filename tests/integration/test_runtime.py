"""The processor runtime on the real PostgreSQL log: effects and offsets commit together."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import psycopg
import pytest
from prometheus_client import REGISTRY
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from chargeledger.bootstrap import runners
from chargeledger.core import codec, db, runtime
from chargeledger.core.events import FRAMES, SESSIONS, Event, SessionEvent
from chargeledger.core.log import Entry, PostgresLog
from chargeledger.core.log_port import Position
from chargeledger.core.runtime import ProcessorRunner
from chargeledger.core.settings import Settings
from chargeledger.gateway.recorder import FrameRecorder
from chargeledger.invoicing.invoices import InvoiceProcessor
from chargeledger.invoicing.projection import InvoiceSink
from chargeledger.invoicing.tariff import load_tariff
from chargeledger.ledger.projections import SessionSink, upsert_sessions
from chargeledger.ledger.sessions import SessionsProcessor
from tests.revisions import session_revision

T = TypeVar("T")


@pytest.fixture
async def log(pool: AsyncConnectionPool) -> AsyncIterator[PostgresLog]:
    log = PostgresLog(pool, partitions=4)
    await log.start()
    yield log
    await log.close()


async def log_a_session(log: PostgresLog, station_id: str = "CP-RT") -> None:
    recorder = FrameRecorder(
        log,
        station_id=station_id,
        ocpp_version="ocpp1.6",
        gateway_id="gw",
        connection_id="c1",
        clock=lambda: datetime(2026, 7, 1, tzinfo=UTC),
    )
    start = {
        "connectorId": 1,
        "idTag": "T",
        "meterStart": 1000,
        "timestamp": "2026-07-01T10:00:00Z",
    }
    stop = {"transactionId": 77, "meterStop": 6000, "timestamp": "2026-07-01T11:00:00Z"}
    for message in (
        [2, "1", "StartTransaction", start],
        [3, "1", {"transactionId": 77, "idTagInfo": {"status": "Accepted"}}],
        [2, "2", "StopTransaction", stop],
        [3, "2", {}],
    ):
        await recorder.frame("INBOUND" if message[0] == 2 else "OUTBOUND", json.dumps(message))


async def everything(log: PostgresLog, stream: str) -> list[Entry]:
    entries: list[Entry] = []
    for partition in range(await log.partitions(stream)):
        entries += await log.read(stream, partition, 0, 1000)
    return entries


async def rows(pool: AsyncConnectionPool, sql: str) -> list[tuple[Any, ...]]:
    async with pool.connection() as conn:
        return await (await conn.execute(sql)).fetchall()


async def stored_sessions(pool: AsyncConnectionPool) -> dict[str, Any]:
    """The sessions the sessions fold has stored, active and ended (under keys of their own)."""
    sessions: dict[str, Any] = {}
    for (state,) in await rows(pool, "SELECT state FROM processor_state ORDER BY key"):
        sessions |= json.loads(bytes(state))["sessions"]
    return sessions


class DiesAfterWriting(SessionSink):
    """The process is stopped in the middle of a batch, after the projection rows were written."""

    async def flush(self, conn: AsyncConnection[Any]) -> None:
        await super().flush(conn)
        raise asyncio.CancelledError


async def test_a_batch_cut_short_leaves_no_trace_and_is_redone_exactly_once(
    log: PostgresLog, pool: AsyncConnectionPool
) -> None:
    await log_a_session(log)
    frames = await everything(log, FRAMES)
    dying = ProcessorRunner(SessionsProcessor(), DiesAfterWriting(), log, pool)
    with pytest.raises(asyncio.CancelledError):
        await dying.process(frames)
    for table in ("sessions", "consumer_offsets", "processor_state", "outbox"):
        assert await rows(pool, f"SELECT * FROM {table}") == [], table
    assert await everything(log, SESSIONS) == []  # nothing was published either

    runner = ProcessorRunner(SessionsProcessor(), SessionSink(), log, pool)
    committed = await runner.process(frames)
    assert committed == {frames[0].position.partition: frames[-1].position.offset + 1}
    assert await rows(pool, "SELECT session_id, revision, status, energy_wh FROM sessions") == [
        ("CP-RT:77", 2, "completed", 5000)
    ]
    # On the PostgreSQL log the outputs were appended in the batch's transaction: nothing waits
    # in the outbox. Start and stop in one batch: only the revision that completes the session.
    assert len(await everything(log, SESSIONS)) == 1
    assert await runner.publish() == 0
    # Delivered again (at-least-once): nothing changes and nothing new is emitted.
    await runner.process(frames)
    assert await runner.publish() == 0
    assert await rows(pool, "SELECT session_id, revision, status, energy_wh FROM sessions") == [
        ("CP-RT:77", 2, "completed", 5000)
    ]
    outputs = [codec.decode(e.value) for e in await everything(log, SESSIONS)]
    assert [o.event_id for o in outputs if isinstance(o, SessionEvent)] == ["CP-RT:77:2"]

    invoicing = ProcessorRunner(
        InvoiceProcessor(load_tariff(None), issuer="CL", codec=codec), InvoiceSink(), log, pool
    )
    await invoicing.process(await everything(log, SESSIONS))
    assert await rows(
        pool, "SELECT invoice_number, session_id, total_incl_vat::text FROM invoices"
    ) == [
        ("CL-2026-000001", "CP-RT:77", "2.32")  # 5 kWh * 0.39 = 1.95 + 19 % VAT 0.37
    ]


class SlowSessionSink(SessionSink):
    async def flush(self, conn: AsyncConnection[Any]) -> None:
        await super().flush(conn)
        await asyncio.sleep(0.3)  # the other consumer claims the partition meanwhile


async def test_two_consumers_of_one_partition_fold_each_entry_once(
    log: PostgresLog, pool: AsyncConnectionPool
) -> None:
    """Around a Kafka rebalance two consumers of a group can hold one partition at once, each
    with a batch from the same offset: the second to claim the partition leaves out what the
    first committed, so nothing is folded twice and no state is written over by an older one
    (here the second has the shorter batch, and would otherwise commit last)."""
    await log_a_session(log)
    frames = await everything(log, FRAMES)
    partition = frames[0].position.partition
    first = ProcessorRunner(SessionsProcessor(), SlowSessionSink(), log, pool)
    second = ProcessorRunner(SessionsProcessor(), SessionSink(), log, pool)
    whole = asyncio.create_task(first.process(frames))
    await asyncio.sleep(0.1)  # the first holds the partition now
    assert await second.process(frames[:2]) == {partition: frames[-1].position.offset + 1}
    assert await whole == {partition: frames[-1].position.offset + 1}
    assert await rows(pool, "SELECT session_id, revision, status, energy_wh FROM sessions") == [
        ("CP-RT:77", 2, "completed", 5000)
    ]
    kept = (await stored_sessions(pool))["77"]
    assert (kept["revision"], kept["stopped_at"]) == (2, "2026-07-01T11:00:00+00:00")


async def test_a_runner_reads_a_state_again_once_another_consumer_wrote_it(
    log: PostgresLog, pool: AsyncConnectionPool
) -> None:
    """A runner keeps the states it wrote in memory; when a partition moves to another consumer
    and back (a Kafka rebalance), what the other wrote in between is read, not the old copy."""
    await log_a_session(log)
    frames = await everything(log, FRAMES)
    first = ProcessorRunner(SessionsProcessor(), SessionSink(), log, pool)
    second = ProcessorRunner(SessionsProcessor(), SessionSink(), log, pool)
    await first.process(frames[:2])  # started
    await second.process(frames[2:3])  # the StopTransaction CALL, taken by the other consumer
    await first.process(frames[3:])  # its answer
    # In the first's old copy the CALL is missing, and the answer would change nothing.
    assert await rows(pool, "SELECT session_id, status, energy_wh FROM sessions") == [
        ("CP-RT:77", "completed", 5000)
    ]
    assert (await stored_sessions(pool))["77"]["stopped_at"] == "2026-07-01T11:00:00+00:00"


async def test_invoicing_keeps_the_issuers_numbers_in_memory_not_every_billed_session(
    log: PostgresLog, pool: AsyncConnectionPool
) -> None:
    """A billed session's state is read again only for a late revision or a review: the
    invoicing runner does not fill its memory with them, and reads them when it needs them."""
    for n in range(3):
        await log_a_session(log, station_id=f"CP-{n}")
    await ProcessorRunner(SessionsProcessor(), SessionSink(), log, pool).process(
        await everything(log, FRAMES)
    )
    revisions = await everything(log, SESSIONS)
    invoicing = ProcessorRunner(
        InvoiceProcessor(load_tariff(None), issuer="CL", codec=codec), InvoiceSink(), log, pool
    )
    await invoicing.process(revisions)
    keys = [key for (key,) in await rows(pool, "SELECT key FROM processor_state")]
    assert sorted(k for k in keys if k.startswith("CL")) == [
        "CL",
        "CL/CP-0:77",
        "CL/CP-1:77",
        "CL/CP-2:77",
    ]
    assert set(invoicing._cache.tokens(keys)) == {"CL"}
    # Delivered again (a rebalance): each session's state is read, and none is billed twice.
    await invoicing.process(revisions)
    assert await rows(pool, "SELECT invoice_number FROM invoices ORDER BY 1") == [
        ("CL-2026-000001",),
        ("CL-2026-000002",),
        ("CL-2026-000003",),
    ]


async def test_only_the_processors_that_share_a_stream_share_its_decoded_events(
    log: PostgresLog, pool: AsyncConnectionPool
) -> None:
    """Invoicing and the audit of completions follow the completions at about the same pace:
    each is decoded once for both. One processor follows the frames on the PostgreSQL log, and
    the completion sequencer alone follows the sessions' revisions, so keeping either decoded
    would only take memory (about 11 KB a completed session)."""
    live = {r.processor.name: r.shares_decoding for r in runners(Settings(), log, pool)}
    assert live["ledger-sessions"] is False
    assert {name for name, shared in live.items() if shared} == {
        "invoicing-invoices",
        "audit-invoicing.completions",
    }
    assert live["invoicing-sequence"] is False
    # A replay has no sequencer (it reads the recorded completion order); invoicing still
    # shares the completions with their audit.
    replay = {
        r.processor.name: r.shares_decoding for r in runners(Settings(), log, pool, sequence=False)
    }
    assert "invoicing-sequence" not in replay
    assert replay["invoicing-invoices"] is True


class CountingSink(SessionSink):
    """Notes how many entries each batch held; holds a batch at its end while ``hold`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []
        self._entries = 0
        self.hold: asyncio.Event | None = None
        self.holding = asyncio.Event()

    async def write(
        self, conn: AsyncConnection[Any], event: Event, position: Position, outputs: list[Event]
    ) -> None:
        self._entries += 1
        await super().write(conn, event, position, outputs)

    async def flush(self, conn: AsyncConnection[Any]) -> None:
        self.batches.append(self._entries)
        self._entries = 0
        if self.hold is not None:
            self.holding.set()
            await self.hold.wait()
            self.hold = None
        await super().flush(conn)


async def test_a_runner_behind_takes_larger_batches_and_small_ones_again_once_caught_up(
    pool: AsyncConnectionPool,
) -> None:
    """Behind, each batch writes a station's state and a session's revision once for many
    frames; caught up, a batch holds what just came, so that it shows at once."""
    log = PostgresLog(pool, partitions=1)
    await log.start()
    for n in range(15):  # 60 frames
        await log_a_session(log, f"CP-{n}")
    sink = CountingSink()
    runner = ProcessorRunner(SessionsProcessor(), sink, log, pool, batch_size=4, max_batch_size=16)

    async def processed(frames: int) -> bool:
        return sum(sink.batches) == frames

    task = asyncio.create_task(runner.run())
    try:
        await until(lambda: processed(60), "the first 60 frames")
        assert sink.batches == [4, 8, 16, 16, 16]
        # Caught up: one frame comes, and while its batch is in hand, 32 more.
        sink.hold = asyncio.Event()
        heartbeat = FrameRecorder(
            log,
            station_id="CP-0",
            ocpp_version="ocpp1.6",
            gateway_id="gw",
            connection_id="c2",
            clock=lambda: datetime(2026, 7, 1, 12, tzinfo=UTC),
        )
        await heartbeat.frame("INBOUND", json.dumps([2, "h", "Heartbeat", {}]))
        await asyncio.wait_for(sink.holding.wait(), 10)
        for n in range(8):
            await log_a_session(log, f"CP-LATE-{n}")
        sink.hold.set()
        await until(lambda: processed(93), "the 33 late frames")
        assert sink.batches[5:] == [1, 4, 8, 16, 4]
    finally:
        runner.stop()
        await task
        await log.close()
    assert len(await rows(pool, "SELECT 1 FROM sessions WHERE status = 'completed'")) == 23


async def test_an_entry_the_database_refuses_is_noted_and_the_rest_goes_on(
    log: PostgresLog, pool: AsyncConnectionPool
) -> None:
    # Bypassing the gateway's checks: a connector id beyond PostgreSQL's integer range.
    recorder = FrameRecorder(
        log,
        station_id="CP-ODD",
        ocpp_version="ocpp1.6",
        gateway_id="gw",
        connection_id="c9",
        clock=lambda: datetime(2026, 7, 1, tzinfo=UTC),
    )
    start = {
        "connectorId": 2**40,
        "idTag": "T",
        "meterStart": 0,
        "timestamp": "2026-07-01T10:00:00Z",
    }
    await recorder.frame("INBOUND", json.dumps([2, "1", "StartTransaction", start]))
    odd = await recorder.frame(
        "OUTBOUND", json.dumps([3, "1", {"transactionId": 5, "idTagInfo": {}}])
    )
    await log_a_session(log, "CP-FINE")
    runner = ProcessorRunner(SessionsProcessor(), SessionSink(), log, pool)
    await runner.process(await everything(log, FRAMES))
    [(offset, error)] = await rows(pool, 'SELECT "offset", error FROM processing_errors')
    assert "out of range" in error
    assert offset == next(
        e.position.offset
        for e in await everything(log, FRAMES)
        if codec.decode(e.value).event_id == odd.event_id
    )
    assert await rows(pool, "SELECT session_id, status FROM sessions") == [
        ("CP-FINE:77", "completed")
    ]


async def test_undecodable_entries_are_noted_not_fatal(
    log: PostgresLog, pool: AsyncConnectionPool
) -> None:
    from chargeledger.core.log import Record

    [bad] = await log.append([Record(FRAMES, "CP-BAD", b"\x00not avro")])
    await log_a_session(log, "CP-BAD")
    runner = ProcessorRunner(SessionsProcessor(), SessionSink(), log, pool)
    counted = noted_errors("ledger-sessions")
    await runner.process(await everything(log, FRAMES))
    assert await rows(pool, 'SELECT partition, "offset", error FROM processing_errors') == [
        (bad.partition, bad.offset, "cannot decode: not an Avro single-object encoded value")
    ]
    assert await rows(pool, "SELECT status FROM sessions") == [("completed",)]
    assert noted_errors("ledger-sessions") == counted + 1
    await runner.process(await everything(log, FRAMES))  # delivered again: noted once
    assert noted_errors("ledger-sessions") == counted + 1


def noted_errors(processor: str) -> float:
    """The Prometheus counter /metrics serves."""
    value = REGISTRY.get_sample_value(
        "chargeledger_processing_errors_total", {"processor": processor}
    )
    return value or 0.0


async def until(probe: Callable[[], Awaitable[T | None]], what: str) -> T:
    for _ in range(300):
        found = await probe()
        if found:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def test_a_processor_whose_batches_keep_failing_is_stuck_until_one_commits(
    log: PostgresLog, pool: AsyncConnectionPool
) -> None:
    await log_a_session(log, "CP-STUCK")
    async with pool.connection() as conn:  # every batch fails at its very end
        await conn.execute(
            "ALTER TABLE consumer_offsets ADD CONSTRAINT on_purpose CHECK (false) NOT VALID"
        )
    runner = ProcessorRunner(SessionsProcessor(), SessionSink(), log, pool, stuck_after_s=0.5)
    assert runner.stuck() is None
    task = asyncio.create_task(runner.run())
    try:

        async def stuck() -> str | None:
            return runner.stuck()

        reason = await until(stuck, "a stuck processor")
        assert reason.startswith("processor ledger-sessions has failed")
        assert "retrying from its last commit" in reason and "on_purpose" in reason
        async with pool.connection() as conn:
            await conn.execute("ALTER TABLE consumer_offsets DROP CONSTRAINT on_purpose")

        async def recovered() -> bool:
            done = await rows(pool, "SELECT status FROM sessions") == [("completed",)]
            return done and runner.stuck() is None

        await until(recovered, "the session and a healthy processor")
    finally:
        runner.stop()
        await task


async def test_a_processor_held_on_one_batch_is_stuck_until_it_commits(
    log: PostgresLog, pool: AsyncConnectionPool
) -> None:
    runner = ProcessorRunner(SessionsProcessor(), SessionSink(), log, pool, stuck_after_s=0.5)
    async with pool.connection() as lock:
        await lock.execute("LOCK TABLE processor_state IN ACCESS EXCLUSIVE MODE")
        task = asyncio.create_task(runner.run())
        await log_a_session(log, "CP-HELD")

        async def stuck() -> str | None:
            return runner.stuck()

        reason = await until(stuck, "a stuck processor")
        assert reason.startswith("processor ledger-sessions has been on one batch for")
    try:  # the lock is gone with its transaction

        async def recovered() -> bool:
            done = await rows(pool, "SELECT status FROM sessions") == [("completed",)]
            return done and runner.stuck() is None

        await until(recovered, "the session and a healthy processor")
    finally:
        runner.stop()
        await task


async def test_an_outbox_row_committed_late_is_still_published(
    log: PostgresLog, pool: AsyncConnectionPool
) -> None:
    """Outbox ids are handed out at insert but rows appear at commit: a publisher that sees a
    higher id first must not delete a lower one it never published."""
    from chargeledger.core.runtime import publish_outbox

    insert = "INSERT INTO outbox (processor, stream, key, value) VALUES ('p', 'test.o', %s, %s)"
    async with pool.connection() as slow:
        await slow.execute(insert, ("k", b"first"))  # id n, not committed yet
        async with pool.connection() as fast:
            await fast.execute(insert, ("k", b"second"))  # id n + 1, committed
            await fast.commit()
        assert await publish_outbox(pool, log, "p") == 1
        await slow.commit()
    assert await publish_outbox(pool, log, "p") == 1
    values = sorted(bytes(e.value) for e in await everything(log, "test.o"))
    assert values == [b"first", b"second"]
    assert await rows(pool, "SELECT * FROM outbox") == []


async def test_outputs_for_a_log_elsewhere_wait_in_the_outbox_and_are_published_after_a_restart(
    pool: AsyncConnectionPool, postgres_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A log that is not in the runner's database (Kafka, in production) cannot take outputs in
    the batch's transaction: they wait in the outbox. A runner that stopped before publishing
    them leaves them to the next one, which publishes them when it starts; what a runner of the
    same processor elsewhere left is published within ``OUTBOX_LOOK_EVERY_S``."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    elsewhere = psycopg.conninfo.make_conninfo(postgres_server, dbname=name)
    db.migrate(elsewhere)
    log_pool = await db.open_pool(elsewhere)
    log = PostgresLog(log_pool, partitions=4)
    try:
        await log.start()
        await log_a_session(log, "CP-A")
        stopped = ProcessorRunner(SessionsProcessor(), SessionSink(), log, pool)
        await stopped.process(await everything(log, FRAMES))
        assert await everything(log, SESSIONS) == []  # stopped before publishing
        assert len(await rows(pool, "SELECT * FROM outbox")) == 1

        runner = ProcessorRunner(SessionsProcessor(), SessionSink(), log, pool)
        assert await runner.publish() == 1
        assert await runner.publish() == 0
        await log_a_session(log, "CP-B")
        await runner.process([e for e in await everything(log, FRAMES) if e.key == "CP-B"])
        assert await runner.publish() == 1
        published = [codec.decode(e.value) for e in await everything(log, SESSIONS)]
        assert sorted(e.event_id for e in published) == ["CP-A:77:2", "CP-B:77:2"]
        assert await rows(pool, "SELECT * FROM outbox") == []

        await log_a_session(log, "CP-C")  # folded by another worker, which died before publishing
        elsewhere_runner = ProcessorRunner(SessionsProcessor(), SessionSink(), log, pool)
        await elsewhere_runner.process(
            [e for e in await everything(log, FRAMES) if e.key == "CP-C"]
        )
        assert await runner.publish() == 0  # it looked a moment ago
        monkeypatch.setattr(runtime, "OUTBOX_LOOK_EVERY_S", 0.0)
        assert await runner.publish() == 1
        assert await rows(pool, "SELECT * FROM outbox") == []
    finally:
        await log.close()
        await log_pool.close()


async def test_invoicing_prices_with_the_tariffs_on_the_log_not_the_tables(
    log: PostgresLog, pool: AsyncConnectionPool
) -> None:
    """The tariff and its assignment reach invoicing as events: none is in the tariff tables,
    and a version put on the log after the session's start is not used."""
    from chargeledger.core.events import TariffAssignment, TariffVersion
    from chargeledger.core.log import Record

    def version(revision: int, price: str, put_at: datetime) -> TariffVersion:
        document = {
            "id": "LOG-T",
            "currency": "EUR",
            "elements": [
                {"price_components": [{"type": "ENERGY", "price": price, "step_size": 1}]}
            ],
            "country_code": "DE",
            "party_id": "CLG",
            "last_updated": "2026-06-01T00:00:00Z",
        }
        return TariffVersion(
            event_id=f"tariff:LOG-T:{revision}",
            tariff_id="LOG-T",
            revision=revision,
            document=json.dumps(document),
            valid_from=datetime(2026, 6, 1, tzinfo=UTC),
            put_at=put_at,
        )

    assigned = TariffAssignment(
        event_id="tariff-assignment:1",
        assignment_id=1,
        tariff_id="LOG-T",
        valid_from=datetime(2026, 6, 1, tzinfo=UTC),
        assigned_at=datetime(2026, 6, 1, tzinfo=UTC),
    )
    later = version(2, "9.00", datetime(2026, 7, 2, tzinfo=UTC))  # stored after the start
    await log.append(
        [
            Record(e.STREAM, e.key, codec.encode(e))
            for e in (version(1, "0.50", datetime(2026, 6, 1, tzinfo=UTC)), assigned, later)
        ]
    )
    await log_a_session(log)
    await ProcessorRunner(SessionsProcessor(), SessionSink(), log, pool).process(
        await everything(log, FRAMES)
    )
    assert await rows(pool, "SELECT count(*) FROM tariff_versions") == [(0,)]
    invoicing = ProcessorRunner(
        InvoiceProcessor(load_tariff(None), issuer="CL", codec=codec), InvoiceSink(), log, pool
    )
    await invoicing.process(await everything(log, SESSIONS))
    assert await rows(pool, "SELECT tariff_id, total_excl_vat::text FROM invoices") == [
        ("LOG-T#1", "2.50")  # 5 kWh * 0.50, with version 1: version 2 came after the start
    ]


async def test_a_sessions_frame_positions_are_stored_as_its_revision_names_them(
    pool: AsyncConnectionPool,
) -> None:
    """The session row's ``frame_positions`` (the evidence behind a revision) is written as an
    array literal: every element must come back as it was, whatever characters it holds."""
    positions = ("ocpp.frames/3/1200", 'a"b', "c\\d", "e,f", "{g}", "NULL", " h ", "", "é")
    revision = session_revision(f"CP-{uuid.uuid4().hex[:8]}:1", frame_positions=positions)
    async with pool.connection() as conn:
        await upsert_sessions(conn, [revision])
        stored = await (
            await conn.execute(
                "SELECT frame_positions FROM sessions WHERE session_id = %s",
                (revision.session_id,),
            )
        ).fetchall()
    assert stored == [(list(positions),)]
