"""The reference data invoicing prices and verifies with, folded from the log's config streams.

Tariff versions, assignments, meter keys and station time zones are append-only and never
retroactive: each applies only to sessions whose start was received after it was stored. So the
catalogue only grows, an event delivered twice is taken once (by its event id), and a session is
priced the same however far the catalogue has been read past its start: live, on a replay, or
from the Kafka topics alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..core.events import (
    METER_KEYS,
    STATION_TIME_ZONES,
    TARIFF_ASSIGNMENTS,
    TARIFFS,
    Event,
    MeterKeyRegistration,
    StationTimeZone,
    TariffAssignment,
    TariffVersion,
)
from .meter_keys import MeterKey, meter_key_of
from .station_zones import StationZone, station_zone_of
from .tariffs import Assignment, StoredTariff, assignment_of, version_of

REFERENCE_STREAMS = (TARIFFS, TARIFF_ASSIGNMENTS, METER_KEYS, STATION_TIME_ZONES)


@dataclass
class TariffCatalogue:
    versions: list[StoredTariff] = field(default_factory=list)
    assignments: list[Assignment] = field(default_factory=list)
    meter_keys: list[MeterKey] = field(default_factory=list)
    zones: list[StationZone] = field(default_factory=list)
    taken: set[str] = field(default_factory=set)  # the event ids already in

    def add(self, event: Event) -> None:
        """Take in one event of ``REFERENCE_STREAMS``; any other event changes nothing."""
        if event.event_id in self.taken:
            return
        match event:
            case TariffVersion():
                self.versions.append(version_of(event))
            case TariffAssignment():
                self.assignments.append(assignment_of(event))
            case MeterKeyRegistration():
                self.meter_keys.append(meter_key_of(event))
            case StationTimeZone():
                self.zones.append(station_zone_of(event))
            case _:
                return
        self.taken.add(event.event_id)
