"""Event log port (``EventLog``) and its adapters: PostgreSQL and Kafka."""

from .base import (
    Entry,
    EventLog,
    LogError,
    LogSettingsError,
    OffsetLoader,
    Position,
    Record,
    Subscription,
    partition_for,
)
from .kafka import KafkaLog
from .kafka_topics import KafkaTopics
from .postgres import PostgresLog

__all__ = [
    "Entry",
    "EventLog",
    "KafkaLog",
    "KafkaTopics",
    "LogError",
    "LogSettingsError",
    "OffsetLoader",
    "Position",
    "PostgresLog",
    "Record",
    "Subscription",
    "partition_for",
]
