"""Which tariff version prices a session (the most specific assignment, the version valid then),
and in which time zone (the station's, from when it was set)."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from chargeledger.core import codec
from chargeledger.core.events import Invoice, SessionEvent
from chargeledger.core.log_port import Position
from chargeledger.invoicing.catalogue import TariffCatalogue
from chargeledger.invoicing.invoices import InvoiceProcessor
from chargeledger.invoicing.station_zones import StationZone, TimeZoneError, check_zone, zone_at
from chargeledger.invoicing.tariffs import Assignment, StoredTariff, parse_tariff, tariff_at

T0 = datetime(2026, 6, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def version(
    tariff_id: str, revision: int, valid_from: datetime, valid_to: datetime | None = None
) -> StoredTariff:
    return StoredTariff(tariff_id, revision, {"id": tariff_id}, valid_from, valid_to, valid_from)


def assignment(
    n: int, tariff_id: str, station: str | None = None, connector: int | None = None,
    valid_from: datetime = T0, valid_to: datetime | None = None,
) -> Assignment:  # fmt: skip
    return Assignment(
        n, tariff_id, station, None, connector, valid_from, valid_to, T0 + n * timedelta(seconds=1)
    )


VERSIONS = [
    version("DEFAULT", 1, T0),
    version("STATION", 1, T0),
    version("STATION", 2, T0 + 10 * DAY),  # a price change from day 10
    version("FAST", 1, T0),
]
ASSIGNMENTS = [
    assignment(1, "DEFAULT"),
    assignment(2, "STATION", station="CP-1"),
    assignment(3, "FAST", station="CP-1", connector=2, valid_to=T0 + 20 * DAY),
]


def choose(at: datetime, station: str = "CP-1", connector: int = 1) -> tuple[str, int] | None:
    found = tariff_at(at, station, None, connector, ASSIGNMENTS, VERSIONS)
    return (found.tariff_id, found.revision) if found else None


def test_the_most_specific_assignment_wins() -> None:
    assert choose(T0 + DAY, connector=2) == ("FAST", 1)
    assert choose(T0 + DAY, connector=1) == ("STATION", 1)
    assert choose(T0 + DAY, station="CP-9") == ("DEFAULT", 1)


def test_the_version_valid_at_the_start_prices_the_session() -> None:
    assert choose(T0 + 9 * DAY) == ("STATION", 1)
    assert choose(T0 + 10 * DAY) == ("STATION", 2)


def test_assignments_end() -> None:
    assert choose(T0 + 25 * DAY, connector=2) == ("STATION", 2)


def test_before_any_assignment_there_is_no_tariff() -> None:
    assert choose(T0 - DAY) is None


def test_a_later_assignment_of_the_same_scope_replaces_the_earlier() -> None:
    later = [*ASSIGNMENTS, assignment(4, "FAST", valid_from=T0 + 5 * DAY)]
    found = tariff_at(T0 + 6 * DAY, "CP-9", None, 1, later, VERSIONS)
    assert found is not None and found.tariff_id == "FAST"


NIGHT = """{"country_code": "SE", "party_id": "CLG", "id": "N", "currency": "EUR",
  "elements": [
    {"price_components": [{"type": "ENERGY", "price": 0.10, "step_size": 1}],
     "restrictions": {"start_time": "22:00", "end_time": "06:00"}},
    {"price_components": [{"type": "ENERGY", "price": 0.50, "step_size": 1}]}
  ], "last_updated": "2026-01-01T00:00:00Z"}"""


def zone(station: str, revision: int, name: str, valid_from: datetime) -> StationZone:
    return StationZone(station, revision, name, valid_from, valid_from)


def test_a_station_time_zone_applies_from_its_registration_on() -> None:
    zones = [
        zone("CP-1", 1, "Europe/Stockholm", T0),
        zone("CP-1", 2, "Asia/Tokyo", T0 + 10 * DAY),
        zone("CP-2", 1, "America/New_York", T0),
    ]
    assert zone_at(zones, "CP-1", T0 - DAY) is None  # before any: the configured default
    assert zone_at(zones, "CP-1", T0 + DAY) == "Europe/Stockholm"
    assert zone_at(zones, "CP-1", T0 + 10 * DAY) == "Asia/Tokyo"
    assert zone_at(zones, "CP-3", T0 + DAY) is None


def test_time_restrictions_apply_in_the_station_s_own_time_zone() -> None:
    # 21:00-22:00 UTC is 23:00-00:00 in Stockholm (night rate), but 21:00 in UTC (day rate).
    started = datetime(2026, 6, 1, 21, tzinfo=UTC)
    session = SessionEvent(
        event_id="CP-1:1:2", session_id="CP-1:1", revision=2, station_id="CP-1", connector_id=1,
        transaction_id=1, started_at=started, meter_start_wh=0, energy_wh=10_000,
        status="completed", source_stream="ledger.sessions", source_partition=0, source_offset=0,
        stopped_at=started + timedelta(hours=1), meter_stop_wh=10_000,
    )  # fmt: skip
    processor = InvoiceProcessor(
        parse_tariff(json.loads(NIGHT, parse_float=Decimal)), issuer="CL", codec=codec
    )

    def total(*zones: StationZone) -> str:
        processor.catalogue = TariffCatalogue(zones=list(zones))
        _, [invoice] = processor.evolve(processor.initial_state(), session, Position("c", 0, 0))
        assert isinstance(invoice, Invoice)
        return invoice.total_excl_vat

    assert total() == "5.00"  # the default zone, UTC: day rate
    assert total(zone("CP-1", 1, "Europe/Stockholm", started - DAY)) == "1.00"
    assert total(zone("CP-1", 1, "Europe/Stockholm", started + DAY)) == "5.00"  # not yet valid


def test_what_was_stored_after_the_start_reached_the_gateway_never_applies() -> None:
    # A station whose clock runs two days ahead starts at "T0 + 5 days" by its clock, reaching
    # the gateway at T0 + 3 days; a tariff assigned at T0 + 4 days is valid from then, before
    # the station's start time, but must not price it: live it was not there yet.
    later = [*ASSIGNMENTS, assignment(9, "FAST", station="CP-9", valid_from=T0 + 4 * DAY)]
    later = [dataclasses.replace(a, assigned_at=a.valid_from) for a in later]
    started, received = T0 + 5 * DAY, T0 + 3 * DAY
    found = tariff_at(started, "CP-9", None, 1, later, VERSIONS, known_at=received)
    assert found is not None and found.tariff_id == "DEFAULT"
    found = tariff_at(started, "CP-9", None, 1, later, VERSIONS, known_at=started)
    assert found is not None and found.tariff_id == "FAST"
    zones = [zone("CP-9", 1, "Asia/Tokyo", T0 + 4 * DAY)]
    assert zone_at(zones, "CP-9", started, known_at=received) is None
    assert zone_at(zones, "CP-9", started) == "Asia/Tokyo"


@pytest.mark.parametrize("name", ["Europe", "Mars/Olympus", "", "../etc"])
def test_a_time_zone_that_is_not_one_is_refused_by_name(name: str) -> None:
    with pytest.raises(TimeZoneError, match="unknown time zone"):
        check_zone(name)
