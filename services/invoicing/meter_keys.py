"""Meter public keys registered per station (each an event on ``config.meter-keys``, written by
``meter_key_store``), and the rule for which key verifies a signed meter value.

An OCMF record is verified with the station's registered key, the one for its meter serial
before one for the whole station; only where none is registered, with the key the station sent
along. A registration applies to sessions starting from when it is stored, never to earlier
ones, so a replay verifies every session with the same key as live.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from ..core.events import MeterKeyRegistration


class MeterKeyError(ValueError):
    """A key that cannot be registered; the message says why."""


@dataclass(frozen=True)
class MeterKey:
    station_id: str
    revision: int
    meter_serial: str | None
    public_key: str  # hex DER SubjectPublicKeyInfo
    valid_from: datetime
    registered_at: datetime


def key_at(
    keys: Sequence[MeterKey],
    station_id: str,
    meter_serial: str | None,
    at: datetime,
    known_at: datetime | None = None,
) -> MeterKey | None:
    """The registered key for this station's meter at ``at``: one for the meter's serial before
    one for the whole station; the newest of those valid then, and registered by ``known_at``
    (when the gateway received the start) where that is known."""
    valid = [
        k
        for k in keys
        if k.station_id == station_id
        and k.valid_from <= at
        and (known_at is None or k.registered_at <= known_at)
    ]
    for_meter = [k for k in valid if meter_serial is not None and k.meter_serial == meter_serial]
    chosen = for_meter or [k for k in valid if k.meter_serial is None]
    return max(chosen, key=lambda k: k.revision) if chosen else None


def meter_key_of(event: MeterKeyRegistration) -> MeterKey:
    """The key an event of ``config.meter-keys`` registered."""
    return MeterKey(
        event.station_id,
        event.revision,
        event.meter_serial,
        event.public_key,
        event.valid_from,
        event.registered_at,
    )
