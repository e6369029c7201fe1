"""Event log port (``EventLog``) and its adapters: PostgreSQL and Kafka."""

from .base import (
    Entry,
    EventLog,
    LogError,
    OffsetLoader,
    Position,
    Record,
    Subscription,
    partition_for,
)
from .kafka import KafkaLog
from .postgres import PostgresLog

__all__ = [
    "Entry",
    "EventLog",
    "KafkaLog",
    "LogError",
    "OffsetLoader",
    "Position",
    "PostgresLog",
    "Record",
    "Subscription",
    "partition_for",
]
