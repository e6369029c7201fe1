"""OCPI 2.2.1 objects the pricing engine reads: Tariff (whole) and a CDR skeleton.

Numbers are ``Decimal`` straight from the JSON text, never floats. Validation follows the
module texts (tariffs, CDRs; release-2.2.1-bugfixes); a document that breaks them is refused
with the field that is wrong.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from ..core.bounds import INT4_MAX, time_problem

DimensionType = Literal["ENERGY", "FLAT", "PARKING_TIME", "TIME"]
DayOfWeek = Literal["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"]
CdrDimensionType = Literal[
    "CURRENT",
    "ENERGY",
    "ENERGY_EXPORT",
    "ENERGY_IMPORT",
    "MAX_CURRENT",
    "MIN_CURRENT",
    "MAX_POWER",
    "MIN_POWER",
    "PARKING_TIME",
    "POWER",
    "RESERVATION_TIME",
    "STATE_OF_CHARGE",
    "TIME",
]
_TIME_OF_DAY = r"^([0-1][0-9]|2[0-3]):[0-5][0-9]$"
_DATE = r"^([12][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"


def _utc_when_naive(value: datetime) -> datetime:
    # An OCPI DateTime written without a time zone is in UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


DateTime = Annotated[datetime, AfterValidator(_utc_when_naive)]


class _Object(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Price(_Object):
    excl_vat: Decimal = Field(ge=0)
    incl_vat: Decimal | None = Field(None, ge=0)


class PriceComponent(_Object):
    type: DimensionType
    price: Decimal = Field(ge=0, description="Per unit, excl. VAT: per kWh, per hour, or once.")
    vat: Decimal | None = Field(None, ge=0, description="Percent; absent: no VAT (not 0 %).")
    step_size: int = Field(
        ge=0,
        description="Wh for ENERGY, seconds for TIME/PARKING_TIME; 0: no step, billed as measured.",
    )


class TariffRestrictions(_Object):
    start_time: str | None = Field(None, pattern=_TIME_OF_DAY)
    end_time: str | None = Field(None, pattern=_TIME_OF_DAY)
    start_date: str | None = Field(None, pattern=_DATE)
    end_date: str | None = Field(None, pattern=_DATE)

    @field_validator("start_date", "end_date")
    @classmethod
    def _a_real_day(cls, value: str | None) -> str | None:
        if value is not None:
            date.fromisoformat(value)  # ValueError names an impossible day, such as 02-30
        return value

    min_kwh: Decimal | None = Field(None, ge=0)
    max_kwh: Decimal | None = Field(None, ge=0)
    min_current: Decimal | None = Field(None, ge=0)
    max_current: Decimal | None = Field(None, ge=0)
    min_power: Decimal | None = Field(None, ge=0)
    max_power: Decimal | None = Field(None, ge=0)
    min_duration: int | None = Field(None, ge=0)
    max_duration: int | None = Field(None, ge=0)
    day_of_week: tuple[DayOfWeek, ...] | None = None
    reservation: Literal["RESERVATION", "RESERVATION_EXPIRES"] | None = None


class TariffElement(_Object):
    price_components: tuple[PriceComponent, ...] = Field(min_length=1)
    restrictions: TariffRestrictions | None = None


class Tariff(_Object):
    country_code: str = Field(min_length=2, max_length=2)
    party_id: str = Field(min_length=3, max_length=3)
    id: str = Field(min_length=1, max_length=36)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    type: str | None = None
    min_price: Price | None = None
    max_price: Price | None = None
    elements: tuple[TariffElement, ...] = Field(min_length=1)
    start_date_time: DateTime | None = None
    end_date_time: DateTime | None = None
    # Required by the module, yet its own PUT example leaves it out; nothing is priced by it.
    last_updated: DateTime | None = None


class CdrDimension(_Object):
    type: CdrDimensionType
    volume: Decimal = Field(ge=0)


class ChargingPeriod(_Object):
    start_date_time: DateTime
    dimensions: tuple[CdrDimension, ...] = Field(min_length=1)
    tariff_id: str | None = None

    def volume(self, dimension: str) -> Decimal | None:
        for d in self.dimensions:
            if d.type == dimension:
                return d.volume
        return None


class CdrSkeleton(_Object):
    """What is needed to price a session: its time span and charging periods."""

    start_date_time: DateTime
    end_date_time: DateTime
    charging_periods: tuple[ChargingPeriod, ...] = Field(min_length=1)

    @field_validator("charging_periods")
    @classmethod
    def _in_order(cls, periods: tuple[ChargingPeriod, ...]) -> tuple[ChargingPeriod, ...]:
        starts: list[datetime] = [p.start_date_time for p in periods]
        if starts != sorted(starts):
            raise ValueError("charging periods must be in order of their start_date_time")
        return periods


# Tariffs are priced in Decimal arithmetic of 28 digits: a billion of anything (EUR per kWh,
# kW, A, kWh) is far beyond a real tariff and keeps what they price within those digits.
_MAX_FIGURE = Decimal(10**9)


def storable_problem(tariff: Tariff) -> str | None:
    """Why a new tariff cannot be stored (a time outside what PostgreSQL, Avro and Python all
    hold, a figure beyond a billion, a count beyond int4), as "field: why"; None when it can.
    Only new tariffs are checked: one stored before is priced as it was."""
    stack: list[tuple[str, object]] = [("", tariff)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, BaseModel):
            stack.extend(
                (f"{where}.{name}".lstrip("."), getattr(value, name))
                for name in type(value).model_fields
            )
        elif isinstance(value, tuple):
            stack.extend((f"{where}.{n}", item) for n, item in enumerate(value))
        elif isinstance(value, datetime):
            problem = time_problem(value)
            if problem is not None:
                return f"{where}: {problem}"
        elif isinstance(value, Decimal) and value > _MAX_FIGURE:
            return f"{where}: must be at most {_MAX_FIGURE:,}"
        elif isinstance(value, int) and not isinstance(value, bool) and value > INT4_MAX:
            return f"{where}: must be at most {INT4_MAX}"
    return None
