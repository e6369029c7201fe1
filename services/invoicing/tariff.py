"""OCPI 2.2.1 tariffs: reading the Tariff object and pricing energy with it.

This version prices the ENERGY dimension of the first tariff element that has no restrictions,
with its VAT. Amounts are Decimal throughout; each invoice amount is rounded half-up to the
currency's minor unit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

# ISO 4217 currencies whose minor unit is not 2 digits; everything else rounds to cents.
_MINOR_UNITS = {
    "BHD": 3,
    "CLF": 4,
    "BIF": 0,
    "CLP": 0,
    "DJF": 0,
    "GNF": 0,
    "IQD": 3,
    "ISK": 0,
    "JOD": 3,
    "JPY": 0,
    "KMF": 0,
    "KRW": 0,
    "KWD": 3,
    "LYD": 3,
    "OMR": 3,
    "PYG": 0,
    "RWF": 0,
    "TND": 3,
    "UGX": 0,
    "UYI": 0,
    "UYW": 4,
    "VND": 0,
    "VUV": 0,
    "XAF": 0,
    "XOF": 0,
    "XPF": 0,
}

DimensionType = Literal["ENERGY", "FLAT", "PARKING_TIME", "TIME"]


class TariffError(ValueError):
    """A tariff file that cannot be used; the message says what is wrong."""


class PriceComponent(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: DimensionType
    price: Decimal = Field(ge=0)
    vat: Decimal | None = Field(default=None, ge=0)
    step_size: int = Field(ge=1)


class TariffElement(BaseModel):
    model_config = ConfigDict(extra="ignore")
    price_components: list[PriceComponent] = Field(min_length=1)
    restrictions: dict[str, Any] | None = None


class Tariff(BaseModel):
    """The fields of an OCPI 2.2.1 Tariff object this version uses."""

    model_config = ConfigDict(extra="ignore")
    country_code: str = Field(min_length=2, max_length=2)
    party_id: str = Field(min_length=3, max_length=3)
    id: str = Field(min_length=1, max_length=36)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    elements: list[TariffElement] = Field(min_length=1)

    def energy_component(self) -> PriceComponent:
        for element in self.elements:
            if element.restrictions:
                continue
            for component in element.price_components:
                if component.type == "ENERGY":
                    return component
        raise TariffError(
            f"tariff {self.id} has no ENERGY price component in an element without restrictions"
        )


def parse_tariff(text: str, source: str = "tariff") -> Tariff:
    try:
        data = json.loads(text, parse_float=Decimal)
    except ValueError as exc:
        raise TariffError(f"{source}: not valid JSON ({exc})") from exc
    try:
        tariff = Tariff.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise TariffError(f"{source}: {where}: {first['msg']}") from exc
    tariff.energy_component()
    return tariff


def load_tariff(path: Path | None) -> Tariff:
    """The tariff in ``path``, or the bundled sample tariff when ``path`` is None."""
    if path is None:
        text = resources.files(__package__).joinpath("sample_tariff.json").read_text("utf-8")
        return parse_tariff(text, "sample tariff")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TariffError(f"cannot read tariff file {path}: {exc.strerror}") from exc
    return parse_tariff(text, str(path))


def minor_unit(currency: str) -> Decimal:
    return Decimal(1).scaleb(-_MINOR_UNITS.get(currency, 2))


def round_money(amount: Decimal, currency: str) -> Decimal:
    return amount.quantize(minor_unit(currency), rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class EnergyCharge:
    billed_wh: int
    quantity_kwh: Decimal
    unit_price_excl_vat: Decimal
    vat_rate_percent: Decimal
    amount_excl_vat: Decimal
    vat_amount: Decimal
    amount_incl_vat: Decimal


def price_energy(tariff: Tariff, energy_wh: int) -> EnergyCharge:
    """The energy charge of a session: energy billed in step_size blocks of Wh."""
    component = tariff.energy_component()
    step = component.step_size
    billed_wh = -(-max(0, energy_wh) // step) * step
    quantity_kwh = (Decimal(billed_wh) / 1000).quantize(Decimal("0.001"))
    vat_rate = component.vat if component.vat is not None else Decimal(0)
    amount_excl_vat = round_money(quantity_kwh * component.price, tariff.currency)
    vat_amount = round_money(amount_excl_vat * vat_rate / 100, tariff.currency)
    return EnergyCharge(
        billed_wh=billed_wh,
        quantity_kwh=quantity_kwh,
        unit_price_excl_vat=component.price,
        vat_rate_percent=vat_rate,
        amount_excl_vat=amount_excl_vat,
        vat_amount=vat_amount,
        amount_incl_vat=amount_excl_vat + vat_amount,
    )
