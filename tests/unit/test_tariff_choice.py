"""Which tariff version prices a session: the most specific assignment, the version valid then."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chargeledger.invoicing.tariffs import Assignment, StoredTariff, tariff_at

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
