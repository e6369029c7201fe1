"""OCPP date-times as the ledger reads them: ISO 8601, within what every time zone can show."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chargeledger.core.meter import EARLIEST, LATEST, TimeOutOfRange, parse_timestamp


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-09-01T13:00:00+02:00", datetime(2026, 9, 1, 11, tzinfo=UTC)),
        ("2026-09-01T11:00:00", datetime(2026, 9, 1, 11, tzinfo=UTC)),  # no offset: UTC
        ("0001-01-02T00:00:00Z", EARLIEST),
        ("9999-12-30T23:59:59.999999Z", LATEST),
        ("9999-12-31T12:00:00+14:00", datetime(9999, 12, 30, 22, tzinfo=UTC)),
    ],
)
def test_readable_times_in_utc(value: str, expected: datetime) -> None:
    assert parse_timestamp(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "0001-01-01T23:59:59Z",
        "0001-01-01T00:00:00+14:00",  # year 0 in UTC: no datetime holds it
        "9999-12-31T00:00:00Z",
        "9999-12-31T23:59:59-14:00",  # year 10000 in UTC
        "0001-01-01T10:00:00",
    ],
)
def test_times_within_a_day_of_the_ends_of_datetime_are_out_of_range(value: str) -> None:
    with pytest.raises(TimeOutOfRange):
        parse_timestamp(value)


@pytest.mark.parametrize("value", ["garbage", "", "2026-02-29T12:00:00Z", "2026-09-01T24:00:00Z"])
def test_what_is_not_iso_8601_is_a_value_error(value: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_timestamp(value)
    assert not isinstance(raised.value, TimeOutOfRange)
