"""Kafka as production runs it, on the real (single-broker) cluster: replication factor,
min.insync.replicas, partition count and topic prefix, and the refusal of what the cluster
cannot satisfy."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from chargeledger.bootstrap import STREAMS
from chargeledger.core.events import FRAMES, SESSIONS
from chargeledger.core.log import KafkaLog, LogSettingsError, Record

pytestmark = pytest.mark.kafka


@pytest.fixture
def prefix() -> str:
    """A deployment of its own on the shared test broker."""
    return f"t{uuid.uuid4().hex[:8]}."


@pytest.fixture
async def admin(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaAdminClient]:
    client = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await client.start()
    yield client
    await client.close()


async def started(kafka_bootstrap: str, **settings: object) -> KafkaLog:
    log = KafkaLog(kafka_bootstrap, **settings)  # type: ignore[arg-type]
    await log.start()
    return log


async def topic_config(admin: AIOKafkaAdminClient, topic: str, name: str) -> str:
    [response] = await admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, topic, {name: None})]
    )
    [resource] = response.to_object()["resources"]
    [entry] = resource["config_entries"]
    return str(entry["config_value"])


async def test_a_replication_factor_above_the_brokers_is_refused_before_any_topic_is_made(
    kafka_bootstrap: str, admin: AIOKafkaAdminClient, prefix: str
) -> None:
    log = await started(kafka_bootstrap, replication_factor=2, topic_prefix=prefix)
    try:
        with pytest.raises(LogSettingsError) as refused:
            await log.ensure_topics(STREAMS)
    finally:
        await log.close()
    assert str(refused.value) == (
        f"kafka_replication_factor is 2, but the Kafka cluster at {kafka_bootstrap} has 1"
        " broker: set --kafka-replication-factor to at most 1, or add brokers"
    )
    assert not [t for t in await admin.list_topics() if t.startswith(prefix)]


async def test_new_topics_get_the_settings_and_existing_ones_are_checked_against_them(
    kafka_bootstrap: str, admin: AIOKafkaAdminClient, prefix: str
) -> None:
    log = await started(kafka_bootstrap, partitions=3, min_insync_replicas=1, topic_prefix=prefix)
    try:
        await log.ensure_topics([FRAMES, SESSIONS])
        assert await log.partitions(FRAMES) == 3
    finally:
        await log.close()
    [described] = await admin.describe_topics([prefix + FRAMES])
    assert len(described["partitions"]) == 3
    assert {len(p["replicas"]) for p in described["partitions"]} == {1}
    assert await topic_config(admin, prefix + FRAMES, "min.insync.replicas") == "1"
    assert await topic_config(admin, prefix + FRAMES, "retention.ms") == "-1"

    # Per-station order needs the partition count a stream was created with.
    again = await started(kafka_bootstrap, partitions=8, topic_prefix=prefix)
    try:
        with pytest.raises(LogSettingsError) as refused:
            await again.ensure_topics([FRAMES, SESSIONS])
    finally:
        await again.close()
    assert str(refused.value).startswith(
        f"topic {prefix}{FRAMES} on Kafka at {kafka_bootstrap} has 3 partitions, but"
        " log_partitions is 8: set CHARGELEDGER_LOG_PARTITIONS=3"
    )


async def test_an_existing_topic_that_cannot_acknowledge_appends_is_refused(
    kafka_bootstrap: str, admin: AIOKafkaAdminClient, prefix: str
) -> None:
    # Made by hand: two in-sync replicas required of a topic that has one.
    await admin.create_topics(
        [NewTopic(prefix + FRAMES, 8, 1, topic_configs={"min.insync.replicas": "2"})]
    )
    log = await started(kafka_bootstrap, topic_prefix=prefix)
    try:
        with pytest.raises(LogSettingsError) as refused:
            await log.ensure_topics([FRAMES])
    finally:
        await log.close()
    assert str(refused.value).startswith(
        f"topic {prefix}{FRAMES} on Kafka at {kafka_bootstrap} has min.insync.replicas=2 but 1"
        " replicas, so no append can be acknowledged"
    )


async def test_deployments_with_other_prefixes_do_not_see_each_other(
    kafka_bootstrap: str, admin: AIOKafkaAdminClient, prefix: str
) -> None:
    site_a = await started(kafka_bootstrap, topic_prefix=f"{prefix}a.")
    site_b = await started(kafka_bootstrap, topic_prefix=f"{prefix}b.")
    try:
        await site_a.ensure_topics([FRAMES])
        await site_b.ensure_topics([FRAMES])
        [position] = await site_a.append([Record(FRAMES, "CP-1", b"frame of site a")])
        assert position.stream == FRAMES  # read back under the stream's name

        [entry] = await site_a.read(FRAMES, position.partition, 0, 10)
        assert (entry.position, entry.value) == (position, b"frame of site a")
        assert await site_b.read(FRAMES, position.partition, 0, 10) == []

        async def from_start(stream: str, partitions: object) -> dict[int, int]:
            return {}

        subscription = site_a.subscribe(FRAMES, "ledger-test", from_start)
        try:
            polled = []
            for _ in range(20):
                polled += await subscription.poll(10, 0.5)
                if polled:
                    break
            assert [e.value for e in polled] == [b"frame of site a"]
            groups = {g[0] for g in await admin.list_consumer_groups()}
            assert f"{prefix}a.ledger-test" in groups and "ledger-test" not in groups
        finally:
            await subscription.close()
    finally:
        await site_a.close()
        await site_b.close()
    topics = set(await admin.list_topics())
    assert {f"{prefix}a.{FRAMES}", f"{prefix}b.{FRAMES}"} <= topics
