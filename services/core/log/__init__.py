"""Event log port (``EventLog``) and its adapters: PostgreSQL, Kafka, and in memory."""

from ..log_port import (
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
from .memory import MemoryLog, MemoryStore
from .postgres import PostgresLog

__all__ = [
    "Entry",
    "EventLog",
    "KafkaLog",
    "KafkaTopics",
    "LogError",
    "LogSettingsError",
    "MemoryLog",
    "MemoryStore",
    "OffsetLoader",
    "Position",
    "PostgresLog",
    "Record",
    "Subscription",
    "partition_for",
]
