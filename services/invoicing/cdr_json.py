"""Reading OCPI JSON documents from files, and writing a priced CDR as OCPI CDR JSON.

Numbers are read as ``Decimal`` and written back as JSON numbers with their exact digits.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ValidationError

from ..core.zones import UnknownTimeZone, zone
from .ocpi import CdrSkeleton, Tariff
from .pricing import FOUR_DECIMALS, Amount, PricedCdr, PricingError, price

M = TypeVar("M", bound=BaseModel)


class DocumentError(ValueError):
    """A file that is not the OCPI document it should be; the message names file and field."""


def read_document(path: Path, model: type[M], what: str) -> tuple[M, dict[str, Any]]:
    """The validated model and the raw JSON object of an OCPI document in ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DocumentError(f"{what} {path}: cannot read it ({exc.strerror})") from None
    try:
        raw = json.loads(text, parse_float=Decimal, parse_constant=_not_a_number)
    except ValueError as exc:
        raise DocumentError(f"{what} {path} is not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise DocumentError(f"{what} {path}: expected a JSON object")
    try:
        return model.model_validate(raw), raw
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(document)"
        raise DocumentError(
            f"{what} {path}: {where}: {first['msg']} ({exc.error_count()} problem(s) in all)"
        ) from None


def _not_a_number(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def time_zone(name: str) -> ZoneInfo:
    try:
        return zone(name)
    except UnknownTimeZone as exc:
        raise DocumentError(str(exc)) from None


def price_files(tariff_path: Path, cdr_path: Path, zone_name: str) -> str:
    """``chargeledger price``: the CDR at ``cdr_path`` priced with the tariff, as JSON text."""
    tariff, raw_tariff = read_document(tariff_path, Tariff, "tariff")
    cdr, raw_cdr = read_document(cdr_path, CdrSkeleton, "CDR")
    try:
        priced = price(cdr, tariff, time_zone(zone_name))
    except PricingError as exc:
        raise DocumentError(f"CDR {cdr_path}: {exc}") from None
    return dumps(priced_cdr(raw_cdr, raw_tariff, priced))


def priced_cdr(
    raw_cdr: dict[str, Any], raw_tariff: dict[str, Any], priced: PricedCdr
) -> dict[str, Any]:
    """The CDR with its tariff, its charging periods cut where prices change, and its totals."""
    periods = []
    for segment in priced.segments:
        dimensions = [
            (kind, volume)
            for kind, volume in (
                ("ENERGY", segment.energy_kwh),
                ("TIME", segment.time_h),
                ("PARKING_TIME", segment.parking_h),
                ("RESERVATION_TIME", segment.reservation_h),
                ("MIN_CURRENT", segment.min_current_a),
                ("MAX_CURRENT", segment.max_current_a),
                ("MIN_POWER", segment.min_power_kw),
                ("MAX_POWER", segment.max_power_kw),
            )
            if volume is not None
            and (volume != 0 or (kind in ("ENERGY", "TIME") and segment.reservation_h == 0))
        ]
        periods.append(
            {
                "start_date_time": segment.start.astimezone(UTC),  # OCPI times are UTC
                "dimensions": [{"type": k, "volume": _four(v)} for k, v in dimensions],
                "tariff_id": priced.tariff_id,
            }
        )
    return {
        **raw_cdr,
        "currency": priced.currency,
        "tariffs": [raw_tariff],
        "charging_periods": periods,
        "total_cost": _price(priced.total_cost),
        "total_fixed_cost": _price(priced.total_fixed_cost),
        "total_energy": _four(priced.total_energy_kwh),
        "total_energy_cost": _price(priced.total_energy_cost),
        "total_time": _four(priced.total_time_h),
        "total_time_cost": _price(priced.total_time_cost),
        "total_parking_time": _four(priced.total_parking_time_h),
        "total_parking_cost": _price(priced.total_parking_cost),
        "total_reservation_cost": _price(priced.total_reservation_cost),
    }


def _four(value: Decimal) -> Decimal:
    return value.quantize(FOUR_DECIMALS)


def _price(amount: Amount) -> dict[str, Decimal]:
    return {"excl_vat": _four(amount.excl_vat), "incl_vat": _four(amount.incl_vat)}


def credit_cdr(original_cdr: str, credit_id: str) -> str:
    """The OCPI Credit CDR of a credit note: all the data of the CDR it credits, under its own
    id, with ``credit`` true, ``credit_reference_id`` the credited CDR's id, and only
    ``total_cost`` negated (as the CDRs module says)."""
    document = json.loads(original_cdr, parse_float=Decimal)
    document["credit_reference_id"] = document["id"]
    document["id"] = credit_id
    document["credit"] = True
    document["total_cost"] = {
        name: Decimal(0) - Decimal(str(value)) for name, value in document["total_cost"].items()
    }
    return dumps(document)


def dumps(document: Any) -> str:
    """JSON with every ``Decimal`` as a number with its exact digits (never through float)."""

    token = uuid.uuid4().hex

    def mark(value: Any) -> Any:
        if isinstance(value, Decimal):
            return f"{token}:{value}"
        if isinstance(value, datetime):
            return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
        raise TypeError(f"{type(value).__name__} is not JSON")

    text = json.dumps(document, default=mark, indent=2, ensure_ascii=False)
    return re.sub(f'"{token}:([-0-9.E+]+)"', r"\1", text)
