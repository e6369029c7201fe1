"""What a Kafka cluster must offer for the topic settings, judged without a cluster."""

from __future__ import annotations

from chargeledger.core.log.kafka_topics import ExistingTopic, KafkaTopics

CLUSTER = "kafka-1:9092"


def frames(partitions: int = 8, replicas: int = 3, in_sync: int | None = 2) -> ExistingTopic:
    return ExistingTopic("site-a.ocpp.frames", partitions, replicas, in_sync)


def test_topics_that_match_the_settings_pass_even_while_a_broker_is_down() -> None:
    topics = KafkaTopics(replication_factor=3, min_insync_replicas=2, prefix="site-a.")
    assert topics.cluster_problem(CLUSTER, brokers=2, existing=[frames()], creating=False) is None


def test_new_topics_need_as_many_brokers_as_replicas() -> None:
    topics = KafkaTopics(replication_factor=3)
    assert topics.cluster_problem(CLUSTER, brokers=3, existing=[], creating=True) is None
    assert topics.cluster_problem(CLUSTER, brokers=2, existing=[], creating=True) == (
        "kafka_replication_factor is 3, but the Kafka cluster at kafka-1:9092 has 2 brokers:"
        " set --kafka-replication-factor to at most 2, or add brokers"
    )


def test_new_topics_without_a_setting_take_the_broker_default_min_insync_replicas() -> None:
    problem = KafkaTopics(replication_factor=1).cluster_problem(
        CLUSTER, brokers=3, existing=[], creating=True, broker_min_insync_replicas=2
    )
    assert problem is not None
    assert problem.startswith(
        "new topics take the broker default min.insync.replicas=2 of the Kafka cluster at"
        " kafka-1:9092, more than kafka_replication_factor 1"
    )
    configured = KafkaTopics(replication_factor=1, min_insync_replicas=1)
    assert (
        configured.cluster_problem(
            CLUSTER, brokers=3, existing=[], creating=True, broker_min_insync_replicas=2
        )
        is None
    )
    assert configured.configs() == {"retention.ms": "-1", "min.insync.replicas": "1"}


def test_existing_topics_must_be_as_durable_as_configured() -> None:
    topics = KafkaTopics(replication_factor=3, min_insync_replicas=2, prefix="site-a.")
    fewer_replicas = topics.cluster_problem(
        CLUSTER, brokers=3, existing=[frames(replicas=1, in_sync=1)], creating=False
    )
    assert fewer_replicas is not None
    assert fewer_replicas.startswith(
        "topic site-a.ocpp.frames on Kafka at kafka-1:9092 has replication factor 1, but"
        " kafka_replication_factor is 3"
    )
    fewer_in_sync = topics.cluster_problem(
        CLUSTER, brokers=3, existing=[frames(in_sync=1)], creating=False
    )
    assert fewer_in_sync is not None
    assert fewer_in_sync.startswith(
        "topic site-a.ocpp.frames on Kafka at kafka-1:9092 has min.insync.replicas=1, but"
        " kafka_min_insync_replicas is 2"
    )


def test_a_prefix_names_topics_and_groups_and_must_leave_room_for_the_stream() -> None:
    topics = KafkaTopics(prefix="site-a.")
    assert topics.topic("ocpp.frames") == "site-a.ocpp.frames"
    assert topics.stream("site-a.ocpp.frames") == "ocpp.frames"
    assert topics.group("chargeledger-ledger") == "site-a.chargeledger-ledger"
    assert topics.name_problem(["ocpp.frames"]) is None
    long = KafkaTopics(prefix="x" * 240)
    assert long.name_problem(["ocpp.frames"]) == (
        "kafka_topic_prefix is 240 characters long: with it the topic of ocpp.frames would have"
        " 251, more than Kafka's 249; choose a shorter --kafka-topic-prefix"
    )
    assert KafkaTopics(prefix="site a").name_problem(["ocpp.frames"]) == (
        "kafka_topic_prefix: 'site a' cannot start a Kafka topic name: use only ASCII letters,"
        " digits, '.', '_' and '-'"
    )
