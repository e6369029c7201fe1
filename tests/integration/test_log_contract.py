"""One contract for the event log, run against the real PostgreSQL, the real Kafka adapter and
the in-memory one."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence

import pytest
from psycopg_pool import AsyncConnectionPool

from chargeledger.core.log import (
    EventLog,
    KafkaLog,
    LogError,
    MemoryLog,
    MemoryStore,
    PostgresLog,
    Record,
    partition_for,
)
from chargeledger.core.log_port import Share
from chargeledger.core.runtime import load_offsets

PARTITIONS = 4


@pytest.fixture(
    params=[
        "postgres",
        "memory",
        pytest.param("kafka", marks=pytest.mark.kafka),
        # A deployment with a topic prefix sees the same log, under the streams' names.
        pytest.param("kafka-prefixed", marks=pytest.mark.kafka),
    ]
)
async def log(request: pytest.FixtureRequest, pool: AsyncConnectionPool) -> AsyncIterator[EventLog]:
    adapter: EventLog
    if request.param == "postgres":
        adapter = PostgresLog(pool, partitions=PARTITIONS)
    elif request.param == "memory":
        adapter = MemoryLog(partitions=PARTITIONS, store=MemoryStore(PARTITIONS))
    else:
        prefix = f"p{uuid.uuid4().hex[:8]}." if request.param == "kafka-prefixed" else ""
        bootstrap = request.getfixturevalue("kafka_bootstrap")
        adapter = KafkaLog(bootstrap, partitions=PARTITIONS, topic_prefix=prefix)
    await adapter.start()
    yield adapter
    await adapter.close()


@pytest.fixture
def stream() -> str:
    return f"contract.{uuid.uuid4().hex[:10]}"


def records(stream: str, key: str, count: int, tag: str = "") -> list[Record]:
    return [Record(stream, key, f"{key}{tag}:{i}".encode()) for i in range(count)]


async def read_all(log: EventLog, stream: str, partition: int) -> list[bytes]:
    return [e.value for e in await log.read(stream, partition, 0, 10_000)]


async def test_append_returns_positions_in_the_key_partition(log: EventLog, stream: str) -> None:
    positions = await log.append(records(stream, "station-a", 3))
    expected_partition = partition_for("station-a", await log.partitions(stream))
    assert [p.partition for p in positions] == [expected_partition] * 3
    assert [p.offset for p in positions] == [positions[0].offset + i for i in range(3)]
    assert await log.end_offset(stream, expected_partition) == positions[-1].offset + 1


async def test_per_key_order_under_concurrent_appends(log: EventLog, stream: str) -> None:
    keys = [f"station-{i}" for i in range(6)]

    async def writer(key: str) -> None:
        for batch in range(5):
            await log.append(records(stream, key, 4, tag=f"/{batch}"))

    await asyncio.gather(*(writer(k) for k in keys))
    seen: dict[str, list[bytes]] = {}
    for partition in range(await log.partitions(stream)):
        for entry in await log.read(stream, partition, 0, 10_000):
            assert partition_for(entry.key, PARTITIONS) == partition
            seen.setdefault(entry.key, []).append(entry.value)
    for key in keys:
        expected = [f"{key}/{b}:{i}".encode() for b in range(5) for i in range(4)]
        assert seen[key] == expected


async def test_read_from_an_offset_and_with_a_limit(log: EventLog, stream: str) -> None:
    positions = await log.append(records(stream, "station-b", 10))
    partition = positions[0].partition
    tail = await log.read(stream, partition, positions[6].offset, 100)
    assert [e.value for e in tail] == [
        b"station-b:6",
        b"station-b:7",
        b"station-b:8",
        b"station-b:9",
    ]
    assert [e.position for e in tail] == positions[6:]
    assert len(await log.read(stream, partition, positions[0].offset, 3)) == 3
    assert await log.read(stream, partition, positions[-1].offset + 1, 10) == []


async def test_subscription_resumes_from_committed_offsets(
    log: EventLog, stream: str, pool: AsyncConnectionPool
) -> None:
    group = f"group-{uuid.uuid4().hex[:8]}"
    await log.append(records(stream, "station-c", 5) + records(stream, "station-d", 5))

    async def loader(s: str, partitions: Sequence[int]) -> dict[int, int]:
        return await load_offsets(pool, group, s, partitions)

    async def drain(count: int) -> list[bytes]:
        subscription = log.subscribe(stream, group, loader)
        got: list[bytes] = []
        try:
            for _ in range(100):
                got += [e.value for e in await subscription.poll(100, 0.3)]
                if len(got) >= count:
                    break
        finally:
            await subscription.close()
        return got

    first = await drain(10)
    assert sorted(first) == sorted(
        [f"station-c:{i}".encode() for i in range(5)]
        + [f"station-d:{i}".encode() for i in range(5)]
    )
    # Commit only station-c's partition as consumed; station-d's must be delivered again.
    c_partition = partition_for("station-c", PARTITIONS)
    d_partition = partition_for("station-d", PARTITIONS)
    assert c_partition != d_partition, "pick keys on different partitions"
    c_end = await log.end_offset(stream, c_partition)
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO consumer_offsets (group_id, stream, partition, next_offset)"
            " VALUES (%s, %s, %s, %s)",
            (group, stream, c_partition, c_end),
        )
    await log.append(records(stream, "station-c", 1, tag="+new"))
    second = await drain(6)
    assert sorted(second) == sorted(
        [b"station-c+new:0"] + [f"station-d:{i}".encode() for i in range(5)]
    )


async def test_rewind_redelivers_what_was_not_committed(
    log: EventLog, stream: str, pool: AsyncConnectionPool
) -> None:
    group = f"group-{uuid.uuid4().hex[:8]}"

    async def loader(s: str, partitions: Sequence[int]) -> dict[int, int]:
        return await load_offsets(pool, group, s, partitions)

    await log.append(records(stream, "station-e", 3))
    subscription = log.subscribe(stream, group, loader)
    try:
        got: list[bytes] = []
        for _ in range(50):
            got += [e.value for e in await subscription.poll(100, 0.3)]
            if len(got) >= 3:
                break
        await subscription.rewind()
        again: list[bytes] = []
        for _ in range(50):
            again += [e.value for e in await subscription.poll(100, 0.3)]
            if len(again) >= 3:
                break
    finally:
        await subscription.close()
    assert got == again == [b"station-e:0", b"station-e:1", b"station-e:2"]


async def test_appended_entries_outlive_the_adapter(
    log: EventLog, stream: str, pool: AsyncConnectionPool, request: pytest.FixtureRequest
) -> None:
    positions = await log.append(records(stream, "station-f", 2))
    await log.close()
    reopened: EventLog
    if isinstance(log, PostgresLog):
        reopened = PostgresLog(pool, partitions=PARTITIONS)
    elif isinstance(log, MemoryLog):
        reopened = MemoryLog(partitions=PARTITIONS, store=log.store)
    else:
        assert isinstance(log, KafkaLog)
        bootstrap = request.getfixturevalue("kafka_bootstrap")
        reopened = KafkaLog(bootstrap, partitions=PARTITIONS, topic_prefix=log.topics.prefix)
    await reopened.start()
    try:
        values = await read_all(reopened, stream, positions[0].partition)
    finally:
        await reopened.close()
        await log.start()  # the fixture closes it again
    assert values == [b"station-f:0", b"station-f:1"]


@pytest.mark.parametrize("workers", [2, 3, PARTITIONS + 2])
async def test_worker_shares_of_an_embedded_log_take_every_partition_once(
    pool: AsyncConnectionPool, stream: str, workers: int
) -> None:
    """Worker processes of the embedded runtime each follow their share of the partitions:
    together every entry once, and no partition in two shares (more workers than partitions
    leaves some idle)."""
    logs: list[EventLog] = [
        PostgresLog(pool, partitions=PARTITIONS),
        MemoryLog(partitions=PARTITIONS),
    ]
    for log in logs:
        await log.start()
        keys = [f"station-{i}" for i in range(40)]
        await log.append([Record(stream, k, k.encode()) for k in keys])

        async def nothing_committed(s: str, partitions: Sequence[int]) -> dict[int, int]:
            return {}

        members = [
            log.subscribe(stream, "g", nothing_committed, Share(i, workers)) for i in range(workers)
        ]
        got = [[(e.position.partition, e.value) for e in await m.poll(1000, 0.1)] for m in members]
        await log.close()
        assert sorted(v for share in got for _, v in share) == sorted(k.encode() for k in keys)
        partitions = [{p for p, _ in share} for share in got]
        for i, share in enumerate(partitions):
            assert all(p % workers == i for p in share), log.name


@pytest.mark.kafka
async def test_kafka_consumer_group_members_share_the_partitions(
    kafka_bootstrap: str, stream: str, pool: AsyncConnectionPool
) -> None:
    log = KafkaLog(kafka_bootstrap, partitions=PARTITIONS)
    await log.start()
    group = f"group-{uuid.uuid4().hex[:8]}"

    async def loader(s: str, partitions: Sequence[int]) -> dict[int, int]:
        return await load_offsets(pool, group, s, partitions)

    keys = [f"station-{i}" for i in range(12)]
    await log.append([Record(stream, k, k.encode()) for k in keys])
    members = [log.subscribe(stream, group, loader) for _ in range(2)]
    got: list[set[tuple[int, bytes]]] = [set(), set()]
    try:
        for _ in range(60):
            for i, member in enumerate(members):
                got[i] |= {(e.position.partition, e.value) for e in await member.poll(100, 0.2)}
            if len(got[0] | got[1]) == len(keys) and all(m.assignment for m in members):
                break
        assignments = [member.assignment for member in members]
    finally:
        for member in members:
            await member.close()
        await log.close()
    # Nothing was committed, so a partition that moved in a rebalance is read again: at least once.
    assert {v for _, v in got[0] | got[1]} == {k.encode() for k in keys}
    # Once both joined, each partition belongs to exactly one of them.
    assert not assignments[0] & assignments[1]
    assert assignments[0] | assignments[1] == set(range(PARTITIONS))


async def test_the_partition_count_of_a_log_cannot_change(pool: AsyncConnectionPool) -> None:
    first = PostgresLog(pool, partitions=PARTITIONS)
    await first.start()
    await first.close()
    with pytest.raises(LogError, match=f"created with {PARTITIONS} partitions"):
        await PostgresLog(pool, partitions=PARTITIONS * 2).start()


async def test_the_partition_count_of_an_in_memory_log_cannot_change() -> None:
    store = MemoryStore(PARTITIONS)
    await MemoryLog(partitions=PARTITIONS, store=store).start()
    with pytest.raises(LogError, match=f"created with {PARTITIONS} partitions"):
        await MemoryLog(partitions=PARTITIONS * 2, store=store).start()
