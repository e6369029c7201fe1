"""How streams become Kafka topics, and whether a cluster can hold them as configured.

Pure: the Kafka adapter asks the cluster for its facts and this module judges them, so that a
setting the cluster cannot satisfy is refused at start-up, in one line that names the setting
and what the cluster has, before anything is created.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

MAX_TOPIC_NAME_CHARS = 249  # Kafka's limit
_TOPIC_NAME_CHARS = re.compile(r"[A-Za-z0-9._-]*")


def prefix_problem(prefix: str) -> str | None:
    """Why ``prefix`` cannot start a Kafka topic name, or None."""
    if not _TOPIC_NAME_CHARS.fullmatch(prefix):
        return (
            f"{prefix!r} cannot start a Kafka topic name: use only ASCII letters, digits,"
            " '.', '_' and '-'"
        )
    return None


@dataclass(frozen=True)
class ExistingTopic:
    """What the cluster says about a topic that is there already."""

    name: str
    partitions: int
    replication_factor: int  # the fewest replicas any of its partitions has
    min_insync_replicas: int | None  # its effective setting (its own or the broker's default)


@dataclass(frozen=True)
class KafkaTopics:
    """The topics' settings: one topic per stream, named ``prefix + stream``."""

    partitions: int = 8
    replication_factor: int = 1
    min_insync_replicas: int | None = None  # None: the broker's default
    prefix: str = ""

    def topic(self, stream: str) -> str:
        return self.prefix + stream

    def stream(self, topic: str) -> str:
        return topic.removeprefix(self.prefix)

    def group(self, group: str) -> str:
        """Consumer groups are named with the prefix too: deployments never share a group."""
        return self.prefix + group

    def configs(self) -> dict[str, str]:
        """The configuration of a new topic."""
        # The log is the system of record: its topics keep every record.
        configs = {"retention.ms": "-1"}
        if self.min_insync_replicas is not None:
            configs["min.insync.replicas"] = str(self.min_insync_replicas)
        return configs

    def name_problem(self, streams: Sequence[str]) -> str | None:
        """Why these streams' topic names are not possible on Kafka, or None."""
        problem = prefix_problem(self.prefix)
        if problem is not None:
            return f"kafka_topic_prefix: {problem}"
        for stream in streams:
            topic = self.topic(stream)
            if len(topic) > MAX_TOPIC_NAME_CHARS:
                return (
                    f"kafka_topic_prefix is {len(self.prefix)} characters long: with it the"
                    f" topic of {stream} would have {len(topic)}, more than Kafka's"
                    f" {MAX_TOPIC_NAME_CHARS}; choose a shorter --kafka-topic-prefix"
                )
        return None

    def cluster_problem(
        self,
        cluster: str,
        *,
        brokers: int,
        existing: Sequence[ExistingTopic],
        creating: bool,
        broker_min_insync_replicas: int | None = None,
    ) -> str | None:
        """Why the cluster cannot hold the topics as configured, or None.

        ``existing`` are the topics that are there; ``creating`` says whether others are to be
        created, which then take ``broker_min_insync_replicas`` unless it is configured.
        """
        for topic in existing:
            where = f"topic {topic.name} on Kafka at {cluster}"
            if topic.partitions != self.partitions:
                return (
                    f"{where} has {topic.partitions} partitions, but log_partitions is"
                    f" {self.partitions}: set CHARGELEDGER_LOG_PARTITIONS={topic.partitions}"
                    " (a stream keeps its partition count, or stations would move to other"
                    " partitions and lose their order)"
                )
            if topic.replication_factor < self.replication_factor:
                return (
                    f"{where} has replication factor {topic.replication_factor}, but"
                    f" kafka_replication_factor is {self.replication_factor}: add replicas to"
                    " the topic (kafka-reassign-partitions) or set --kafka-replication-factor"
                    f" {topic.replication_factor}"
                )
            in_sync = topic.min_insync_replicas
            if in_sync is not None and in_sync > topic.replication_factor:
                return (
                    f"{where} has min.insync.replicas={in_sync} but {topic.replication_factor}"
                    " replicas, so no append can be acknowledged: lower the topic's"
                    f" min.insync.replicas (kafka-configs --alter --topic {topic.name}"
                    f" --add-config min.insync.replicas={topic.replication_factor})"
                )
            wanted = self.min_insync_replicas
            if in_sync is not None and wanted is not None and in_sync < wanted:
                return (
                    f"{where} has min.insync.replicas={in_sync}, but kafka_min_insync_replicas"
                    f" is {wanted}: raise the topic's (kafka-configs --alter --topic"
                    f" {topic.name} --add-config min.insync.replicas={wanted}) or set"
                    f" --kafka-min-insync-replicas {in_sync}"
                )
        if not creating:
            return None
        if self.replication_factor > brokers:
            return (
                f"kafka_replication_factor is {self.replication_factor}, but the Kafka cluster"
                f" at {cluster} has {brokers} broker{'' if brokers == 1 else 's'}: set"
                f" --kafka-replication-factor to at most {brokers}, or add brokers"
            )
        default = broker_min_insync_replicas
        configured = self.min_insync_replicas
        if configured is None and default is not None and default > self.replication_factor:
            return (
                f"new topics take the broker default min.insync.replicas={default} of the"
                f" Kafka cluster at {cluster}, more than kafka_replication_factor"
                f" {self.replication_factor}, so no append could be acknowledged: set"
                f" --kafka-min-insync-replicas to at most {self.replication_factor}, or"
                f" --kafka-replication-factor to at least {default}"
            )
        return None
