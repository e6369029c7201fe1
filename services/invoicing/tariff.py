"""The default tariff (a file, or the bundled sample) and money in a currency's minor unit.

Invoice amounts are rounded half-up to the currency's minor unit (cents, or none for JPY, ...).
"""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal
from importlib import resources
from pathlib import Path

from pydantic import ValidationError

from .ocpi import Tariff

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


class TariffError(ValueError):
    """A tariff file that cannot be used; the message says what is wrong."""


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
