"""The event log on Apache Kafka (aiokafka): one topic per stream, keyed by station id.

The producer uses ``acks=all`` with idempotence, so an append returns only once the broker has
the record (on ``min.insync.replicas`` replicas) and a retried send is not written twice. Topic
names and consumer group ids carry the topic prefix, so that deployments can share a cluster;
entries are read back under their stream's name. At start-up ``ensure_topics`` refuses settings
the cluster cannot satisfy (``kafka_topics.py``) before it creates any topic.

Consumer groups share partitions; the offsets that count are the ones the consumer stores with
its own writes (``OffsetLoader``); they are also committed to Kafka afterwards so that lag shows
up in the usual tools.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError

from ..log_port import (
    EVERY_PARTITION,
    Entry,
    LogError,
    LogSettingsError,
    OffsetLoader,
    Position,
    Record,
    Share,
)
from .kafka_topics import ExistingTopic, KafkaTopics

_TOPIC_EXISTS = 36
# CreateTopics errors that come from the topic's settings: invalid partitions, replication
# factor, replica assignment or config, and a broker policy refusing them.
_SETTING_ERRORS = {37, 38, 39, 40, 44}
_MIN_INSYNC = "min.insync.replicas"


class KafkaLog:
    def __init__(
        self,
        bootstrap: str,
        *,
        partitions: int = 8,
        replication_factor: int = 1,
        min_insync_replicas: int | None = None,
        topic_prefix: str = "",
        client_id: str = "chargeledger",
    ):
        self.name = f"kafka://{bootstrap}"
        self.topics = KafkaTopics(partitions, replication_factor, min_insync_replicas, topic_prefix)
        self._bootstrap = bootstrap
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
            async with asyncio.timeout(5):
                await self._producer.client.fetch_all_metadata()
        except (KafkaError, TimeoutError) as exc:
            raise self._error("reaching the broker", exc) from exc

    async def ensure_topics(self, streams: Sequence[str], *, check: bool = True) -> None:
        """Create the topics of these streams that are missing, with the configured partitions,
        replication factor and min.insync.replicas; first refuse (LogSettingsError) what the
        cluster cannot satisfy. With ``check``, the topics that exist must match the settings
        too (start-up); without, only new topics are judged (a stream first used later)."""
        problem = self.topics.name_problem(streams)
        if problem is not None:
            raise LogSettingsError(problem)
        topics = [self.topics.topic(s) for s in streams]
        admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap, client_id=self._client_id)
        try:
            await admin.start()
            present = set(await admin.list_topics())
            missing = [t for t in topics if t not in present]
            existing = [t for t in topics if t in present] if check else []
            if not missing and not existing:
                return
            brokers = [b["node_id"] for b in (await admin.describe_cluster())["brokers"]]
            default = None
            if missing and self.topics.min_insync_replicas is None and brokers:
                broker = str(brokers[0])
                default = (await _min_insync(admin, ConfigResourceType.BROKER, [broker]))[broker]
            problem = self.topics.cluster_problem(
                self._bootstrap,
                brokers=len(brokers),
                existing=await _describe(admin, existing) if existing else [],
                creating=bool(missing),
                broker_min_insync_replicas=default,
            )
            if problem is not None:
                raise LogSettingsError(problem)
            if missing:
                response = await admin.create_topics(
                    [
                        NewTopic(
                            t,
                            self.topics.partitions,
                            replication_factor=self.topics.replication_factor,
                            topic_configs=self.topics.configs(),
                        )
                        for t in missing
                    ]
                )
                for error in response.to_object()["topic_errors"]:
                    code = error["error_code"]
                    if code in (0, _TOPIC_EXISTS):
                        continue
                    message = f"creating topic {error['topic']} on Kafka at {self._bootstrap}"
                    reason = error.get("error_message") or f"error code {code}"
                    if code in _SETTING_ERRORS:
                        raise LogSettingsError(f"{message} was refused: {reason}")
                    raise LogError(f"{message} failed: {reason}")
        except KafkaError as exc:
            raise self._error("creating topics", exc) from exc
        finally:
            await admin.close()

    async def partitions(self, stream: str) -> int:
        if stream not in self._known:
            if self._producer is None:
                raise LogError("the Kafka log is not started")
            await self.ensure_topics([stream], check=False)
            found = await self._producer.partitions_for(self.topics.topic(stream))
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
                await self._producer.send(
                    self.topics.topic(r.stream), r.value, key=r.key.encode("utf-8")
                )
                for r in records
            ]
            done = await asyncio.gather(*sent)
        except KafkaError as exc:
            raise self._error("append", exc) from exc
        return [
            Position(r.stream, m.partition, m.offset) for r, m in zip(records, done, strict=True)
        ]

    def _consumer(self, group: str | None = None) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            client_id=self._client_id,
            group_id=None if group is None else self.topics.group(group),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )

    async def read(self, stream: str, partition: int, offset: int, limit: int) -> list[Entry]:
        end = await self.end_offset(stream, partition)
        if offset >= end:
            return []
        consumer = self._consumer()
        tp = TopicPartition(self.topics.topic(stream), partition)
        out: list[Entry] = []
        try:
            await consumer.start()
            consumer.assign([tp])
            consumer.seek(tp, offset)
            while len(out) < limit:
                batch = await consumer.getmany(tp, timeout_ms=1000, max_records=limit - len(out))
                records = batch.get(tp, [])
                out.extend(_entry(stream, m) for m in records)
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
        tp = TopicPartition(self.topics.topic(stream), partition)
        try:
            await consumer.start()
            ends = await consumer.end_offsets([tp])
        except KafkaError as exc:
            raise self._error(f"reading the end of {stream}[{partition}]", exc) from exc
        finally:
            await consumer.stop()
        return int(ends[tp])

    async def end_offsets(self, stream: str) -> dict[int, int]:
        tps = [
            TopicPartition(self.topics.topic(stream), p)
            for p in range(await self.partitions(stream))
        ]
        consumer = self._consumer()
        try:
            await consumer.start()
            ends = await consumer.end_offsets(tps)
        except KafkaError as exc:
            raise self._error(f"reading the ends of {stream}", exc) from exc
        finally:
            await consumer.stop()
        return {tp.partition: int(ends[tp]) for tp in tps}

    def subscribe(
        self, stream: str, group: str, load_offsets: OffsetLoader, share: Share = EVERY_PARTITION
    ) -> KafkaSubscription:
        return KafkaSubscription(self, stream, group, load_offsets)  # the group shares them


async def _min_insync(
    admin: AIOKafkaAdminClient, kind: ConfigResourceType, names: Sequence[str]
) -> dict[str, int | None]:
    """The effective min.insync.replicas of these topics or brokers."""
    responses = await admin.describe_configs(
        [ConfigResource(kind, name, {_MIN_INSYNC: None}) for name in names]
    )
    found: dict[str, int | None] = dict.fromkeys(names)
    for response in responses:
        for resource in response.to_object()["resources"]:
            for entry in resource["config_entries"]:
                if entry["config_names"] == _MIN_INSYNC and entry["config_value"]:
                    found[resource["resource_name"]] = int(entry["config_value"])
    return found


async def _describe(admin: AIOKafkaAdminClient, topics: Sequence[str]) -> list[ExistingTopic]:
    """These topics as the cluster has them, in the order given."""
    in_sync = await _min_insync(admin, ConfigResourceType.TOPIC, topics)
    described = {
        t["topic"]: ExistingTopic(
            t["topic"],
            len(t["partitions"]),
            min(len(p["replicas"]) for p in t["partitions"]),
            in_sync.get(t["topic"]),
        )
        for t in await admin.describe_topics(list(topics))
        if t["error_code"] == 0 and t["partitions"]
    }
    return [described[t] for t in topics if t in described]


def _entry(stream: str, message: object) -> Entry:
    m = message  # aiokafka ConsumerRecord
    key = m.key.decode("utf-8") if m.key is not None else ""  # type: ignore[attr-defined]
    return Entry(
        Position(stream, m.partition, m.offset),  # type: ignore[attr-defined]
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
        self._topic = log.topics.topic(stream)
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
            consumer.subscribe([self._topic], listener=_SeekToStoredOffsets(self))
            self._consumer = consumer
        return self._consumer

    async def seek_stored(self, partitions: list[int]) -> None:
        assert self._consumer is not None
        for partition in partitions:
            self._floor.pop(partition, None)  # unknown until loaded: hold its records back
        stored = await self._load_offsets(self._stream, partitions)
        for partition in partitions:
            tp = TopicPartition(self._topic, partition)
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
            _entry(self._stream, m)
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
        offsets = {TopicPartition(self._topic, p): o for p, o in next_offsets.items()}
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
