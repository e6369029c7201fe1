"""The event log on Apache Kafka (aiokafka): one topic per stream, keyed by station id.

The producer uses ``acks=all`` with idempotence, so an append returns only once the broker has
the record and a retried send is not written twice. Consumer groups share partitions; the offsets
that count are the ones the consumer stores with its own writes (``OffsetLoader``); they are also
committed to Kafka afterwards so that lag shows up in the usual tools.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from .base import Entry, LogError, OffsetLoader, Position, Record


class KafkaLog:
    def __init__(self, bootstrap: str, *, partitions: int = 8, client_id: str = "chargeledger"):
        self.name = f"kafka://{bootstrap}"
        self._bootstrap = bootstrap
        self._partitions = partitions
        self._client_id = client_id
        self._producer: AIOKafkaProducer | None = None
        self._known: dict[str, int] = {}

    def _error(self, what: str, exc: BaseException) -> LogError:
        return LogError(
            f"{what} on Kafka at {self._bootstrap} failed: {exc!r}; "
            "check that the broker is running (deploy/kafka.sh start)"
        )

    async def start(self) -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            client_id=self._client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=2,
        )
        try:
            await producer.start()
        except KafkaError as exc:
            await producer.stop()
            raise self._error("connecting the producer", exc) from exc
        self._producer = producer

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def ping(self) -> None:
        if self._producer is None:
            raise LogError("the Kafka log is not started")
        try:
            await asyncio.wait_for(self._producer.client.fetch_all_metadata(), 5)
        except (KafkaError, TimeoutError) as exc:
            raise self._error("reaching the broker", exc) from exc

    async def ensure_topics(self, streams: Sequence[str]) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap, client_id=self._client_id)
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [s for s in streams if s not in existing]
            if missing:
                with contextlib.suppress(TopicAlreadyExistsError):
                    await admin.create_topics(
                        [
                            # The log is the system of record: its topics keep every record.
                            NewTopic(
                                s,
                                self._partitions,
                                replication_factor=1,
                                topic_configs={"retention.ms": "-1"},
                            )
                            for s in missing
                        ]
                    )
        except KafkaError as exc:
            raise self._error("creating topics", exc) from exc
        finally:
            await admin.close()

    async def partitions(self, stream: str) -> int:
        if stream not in self._known:
            if self._producer is None:
                raise LogError("the Kafka log is not started")
            await self.ensure_topics([stream])
            found = await self._producer.partitions_for(stream)
            self._known[stream] = len(found)
        return self._known[stream]

    async def append(self, records: Sequence[Record]) -> list[Position]:
        if not records:
            return []
        if self._producer is None:
            raise LogError("the Kafka log is not started")
        for stream in {r.stream for r in records}:
            await self.partitions(stream)
        try:
            sent = [
                await self._producer.send(r.stream, r.value, key=r.key.encode("utf-8"))
                for r in records
            ]
            done = await asyncio.gather(*sent)
        except KafkaError as exc:
            raise self._error("append", exc) from exc
        return [Position(m.topic, m.partition, m.offset) for m in done]

    def _consumer(self, group: str | None = None) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            client_id=self._client_id,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )

    async def read(self, stream: str, partition: int, offset: int, limit: int) -> list[Entry]:
        end = await self.end_offset(stream, partition)
        if offset >= end:
            return []
        consumer = self._consumer()
        tp = TopicPartition(stream, partition)
        out: list[Entry] = []
        try:
            await consumer.start()
            consumer.assign([tp])
            consumer.seek(tp, offset)
            while len(out) < limit:
                batch = await consumer.getmany(tp, timeout_ms=1000, max_records=limit - len(out))
                records = batch.get(tp, [])
                out.extend(_entry(m) for m in records)
                if not records or out[-1].position.offset + 1 >= end:
                    break
        except KafkaError as exc:
            raise self._error(f"reading {stream}[{partition}]", exc) from exc
        finally:
            await consumer.stop()
        return out[:limit]

    async def end_offset(self, stream: str, partition: int) -> int:
        await self.partitions(stream)
        consumer = self._consumer()
        tp = TopicPartition(stream, partition)
        try:
            await consumer.start()
            ends = await consumer.end_offsets([tp])
        except KafkaError as exc:
            raise self._error(f"reading the end of {stream}[{partition}]", exc) from exc
        finally:
            await consumer.stop()
        return int(ends[tp])

    def subscribe(self, stream: str, group: str, load_offsets: OffsetLoader) -> KafkaSubscription:
        return KafkaSubscription(self, stream, group, load_offsets)


def _entry(message: object) -> Entry:
    m = message  # aiokafka ConsumerRecord
    key = m.key.decode("utf-8") if m.key is not None else ""  # type: ignore[attr-defined]
    return Entry(
        Position(m.topic, m.partition, m.offset),  # type: ignore[attr-defined]
        key,
        m.value,  # type: ignore[attr-defined]
        datetime.fromtimestamp(m.timestamp / 1000, UTC),  # type: ignore[attr-defined]
    )


class _SeekToStoredOffsets(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, subscription: KafkaSubscription) -> None:
        self._subscription = subscription

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        return None

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self._subscription.seek_stored([tp.partition for tp in assigned])


class KafkaSubscription:
    def __init__(self, log: KafkaLog, stream: str, group: str, load_offsets: OffsetLoader) -> None:
        self._log = log
        self._stream = stream
        self._group = group
        self._load_offsets = load_offsets
        self._consumer: AIOKafkaConsumer | None = None
        # Per partition, the offset the consumer's own store says comes next. Records of a
        # partition are delivered only once this is known, and never below it: aiokafka may fetch
        # from Kafka's committed offset (which trails ours) before our seek takes effect.
        self._floor: dict[int, int] = {}

    @property
    def assignment(self) -> set[int]:
        """The partitions this member of the group reads now."""
        if self._consumer is None:
            return set()
        return {tp.partition for tp in self._consumer.assignment()}

    async def _started(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            await self._log.partitions(self._stream)
            consumer = self._log._consumer(self._group)
            try:
                await consumer.start()
            except KafkaError as exc:
                await consumer.stop()
                raise self._log._error(f"joining consumer group {self._group}", exc) from exc
            consumer.subscribe([self._stream], listener=_SeekToStoredOffsets(self))
            self._consumer = consumer
        return self._consumer

    async def seek_stored(self, partitions: list[int]) -> None:
        assert self._consumer is not None
        for partition in partitions:
            self._floor.pop(partition, None)  # unknown until loaded: hold its records back
        stored = await self._load_offsets(self._stream, partitions)
        for partition in partitions:
            tp = TopicPartition(self._stream, partition)
            self._floor[partition] = stored.get(partition, 0)
            if partition in stored:
                self._consumer.seek(tp, stored[partition])
            else:
                await self._consumer.seek_to_beginning(tp)

    async def poll(self, max_records: int, timeout_s: float) -> list[Entry]:
        consumer = await self._started()
        try:
            batch = await consumer.getmany(
                timeout_ms=int(timeout_s * 1000), max_records=max_records
            )
        except KafkaError as exc:
            raise self._log._error(f"polling {self._stream}", exc) from exc
        entries = [
            _entry(m)
            for records in batch.values()
            for m in records
            if m.partition in self._floor and m.offset >= self._floor[m.partition]
        ]
        entries.sort(key=lambda e: e.position)
        return entries

    async def committed(self, next_offsets: dict[int, int]) -> None:
        for partition, offset in next_offsets.items():
            if partition in self._floor:
                self._floor[partition] = max(self._floor[partition], offset)
        if self._consumer is None or not next_offsets:
            return
        offsets = {TopicPartition(self._stream, p): o for p, o in next_offsets.items()}
        assigned = self._consumer.assignment()
        offsets = {tp: o for tp, o in offsets.items() if tp in assigned}
        # Best effort: the authoritative offsets are already committed with the projection.
        with contextlib.suppress(KafkaError):
            await self._consumer.commit(offsets)

    async def rewind(self) -> None:
        if self._consumer is not None:
            await self.seek_stored([tp.partition for tp in self._consumer.assignment()])

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
