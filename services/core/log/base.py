"""The port, as the adapters of this package import it (it lives in ``core.log_port``)."""

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

__all__ = [
    "Entry",
    "EventLog",
    "LogError",
    "LogSettingsError",
    "OffsetLoader",
    "Position",
    "Record",
    "Subscription",
    "partition_for",
]
