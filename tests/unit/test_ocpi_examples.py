"""The example tariffs of the OCPI 2.2.1 tariffs module, through the product's own validation.

``tests/fixtures/ocpi/tariffs`` holds example tariff JSON as the module prints it (see the
README there). Every file in it is accepted the way ``chargeledger tariffs put`` / ``PUT
/api/v1/tariffs/{id}`` and ``chargeledger up --tariff`` accept a tariff, and prices the sessions
the module describes for it, through ``chargeledger price``, to the module's figures. A file
added there fails the count until its sessions are written down here.

The module's other examples are tested from their figures: most in ``test_pricing.py``, and
here the Free of Charge tariff, the PUT example and the two reservation-expiry tariffs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from chargeledger.cli import app
from chargeledger.invoicing import tariff as tariff_file
from chargeledger.invoicing import tariffs as tariff_store
from chargeledger.invoicing.cdr_json import dumps
from chargeledger.invoicing.ocpi import CdrSkeleton, Tariff
from chargeledger.invoicing.pricing import PricedCdr, price
from chargeledger.invoicing.tariff import round_money

FOLDER = Path(__file__).parents[1] / "fixtures" / "ocpi" / "tariffs"
EXAMPLES = sorted(FOLDER.glob("*.json"))
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday


@dataclass(frozen=True)
class Session:
    """A session the module describes for an example, and what it says that session costs."""

    periods: tuple[
        tuple[int, dict[str, str]], ...
    ]  # (minutes after the start, {dimension: volume})
    end_minutes: int
    excl_vat: str  # in cents, as an invoice shows it
    incl_vat: str | None  # None: the module gives no figure incl. VAT
    dimensions: frozenset[str]  # the dimensions that were priced


def session(
    *periods: tuple[int, dict[str, str]],
    end: int,
    excl: str,
    incl: str | None,
    dims: set[str],
) -> Session:
    return Session(periods, end, excl, incl, frozenset(dims))


def minutes(n: int) -> str:
    return str(Decimal(n) / 60)


RESERVED_THEN_20_KWH = {"FLAT", "ENERGY", "RESERVATION"}
SESSIONS: dict[str, list[Session]] = {
    "tariff_12_025kwh_min_price.json": [
        session((0, {"ENERGY": "20"}), end=60, excl="5.00", incl="5.50", dims={"ENERGY"}),
        # Less than 2 kWh: the minimum price.
        session((0, {"ENERGY": "1"}), end=10, excl="0.50", incl="0.55", dims={"ENERGY"}),
    ],
    "tariff_6_025kwh_start_max_price.json": [
        session(
            (0, {"ENERGY": "50"}), end=120, excl="10.00", incl="11.00", dims={"FLAT", "ENERGY"}
        ),
        session((0, {"ENERGY": "30"}), end=120, excl="8.00", incl="8.85", dims={"FLAT", "ENERGY"}),
    ],
    "tariff_3_alt_url.json": [
        # 20.45 kWh billed as 20.5 (steps of 100 Wh); the announced prices.
        session(
            (0, {"ENERGY": "20.45"}), end=60, excl="5.63", incl="6.24", dims={"FLAT", "ENERGY"}
        ),
    ],
    "tariff_2_alt_text.json": [
        session((0, {"TIME": "2.5"}), end=150, excl="4.75", incl="5.00", dims={"TIME"}),
    ],
    "tariff_11_not_possible_alt_text.json": [
        # The module gives no figure: 0.40 start + 2.5 h at 1.90 = 5.15; VAT 25 % and 5.2 %.
        session((0, {"TIME": "2.5"}), end=150, excl="5.15", incl="5.50", dims={"FLAT", "TIME"}),
    ],
    "tariff_15_reservation_5_euro_per_hour.json": [
        session(
            (0, {"RESERVATION_TIME": minutes(15)}),
            (15, {"ENERGY": "20"}),
            end=90,
            excl="6.75",
            incl="7.60",
            dims=RESERVED_THEN_20_KWH,
        ),
    ],
    "tariff_16_reservation_2_euro_fee_5_euro_per_hour.json": [
        # 13 minutes of reservation billed as 15 (steps of 5 minutes), and the 2.00 fee.
        session(
            (0, {"RESERVATION_TIME": minutes(13)}),
            (13, {"ENERGY": "20"}),
            end=90,
            excl="8.75",
            incl="10.00",
            dims=RESERVED_THEN_20_KWH | {"RESERVATION_FLAT"},
        ),
    ],
    "tariffrestriction_example_max_duration.json": [
        # 5 kWh in the first 30 minutes (free), 1.2 kWh in the 10 after (0.25/kWh).
        session(
            (0, {"ENERGY": "5"}),
            (30, {"ENERGY": "1.2"}),
            end=40,
            excl="0.30",
            incl=None,
            dims={"ENERGY"},
        ),
    ],
}


def test_the_folder_holds_every_example_with_its_sessions() -> None:
    assert len(EXAMPLES) == 8
    assert {path.name for path in EXAMPLES} == set(SESSIONS)


def cdr_document(*periods: tuple[int, dict[str, str]], end: int) -> dict[str, Any]:
    return {
        "id": "CDR-1",
        "start_date_time": START.isoformat(),
        "end_date_time": (START + timedelta(minutes=end)).isoformat(),
        "charging_periods": [
            {
                "start_date_time": (START + timedelta(minutes=at)).isoformat(),
                "dimensions": [{"type": k, "volume": Decimal(v)} for k, v in dims.items()],
            }
            for at, dims in periods
        ],
    }


def accepted(path: Path) -> tuple[Tariff, dict[str, Any]]:
    """The tariff as each way into the product reads it; they must agree."""
    document = json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
    through_put = tariff_store.parse_tariff(document)  # tariffs put, PUT /api/v1/tariffs/{id}
    through_up = tariff_file.load_tariff(path)  # chargeledger up --tariff
    assert through_put == through_up
    return through_put, document


def price_command(tmp_path: Path, tariff_path: Path, cdr: dict[str, Any]) -> Any:
    cdr_path = tmp_path / "cdr.json"
    cdr_path.write_text(dumps(cdr), encoding="utf-8")
    result = CliRunner().invoke(
        app, ["price", "--tariff", str(tariff_path), "--cdr", str(cdr_path)]
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.output, parse_float=Decimal)


def cents(amount: Decimal) -> str:
    return str(round_money(amount, "EUR"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_an_example_is_accepted_and_priced_as_the_module_says(path: Path, tmp_path: Path) -> None:
    tariff, document = accepted(path)
    for s in SESSIONS[path.name]:
        cdr = cdr_document(*s.periods, end=s.end_minutes)
        out = price_command(tmp_path, path, cdr)
        assert out["currency"] == document["currency"] == "EUR"
        assert out["tariffs"] == [document]  # printed as it was read, numbers as written
        total = out["total_cost"]
        assert cents(total["excl_vat"]) == s.excl_vat
        if s.incl_vat is not None:
            assert cents(total["incl_vat"]) == s.incl_vat
        priced = price(CdrSkeleton.model_validate(cdr), tariff, UTC)
        assert {line.dimension for line in priced.lines} == s.dimensions


# --- the module's other examples, written from their figures ---------------------------------


def component(kind: str, amount: str, vat: str | None, step: int) -> dict[str, Any]:
    out: dict[str, Any] = {"type": kind, "price": Decimal(amount), "step_size": step}
    if vat is not None:
        out["vat"] = Decimal(vat)
    return out


def example(*elements: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "country_code": "DE",
        "party_id": "ALL",
        "id": "20",
        "currency": "EUR",
        "elements": list(elements),
        "last_updated": "2019-02-03T17:00:11Z",
        **extra,
    }


def written(tmp_path: Path, document: dict[str, Any]) -> Path:
    path = tmp_path / "tariff.json"
    path.write_text(dumps(document), encoding="utf-8")
    return path


def totals(priced: PricedCdr) -> tuple[str, str]:
    return cents(priced.total_cost.excl_vat), cents(priced.total_cost.incl_vat)


def priced(t: Tariff, *periods: tuple[int, dict[str, str]], end: int) -> PricedCdr:
    return price(CdrSkeleton.model_validate(cdr_document(*periods, end=end)), t, UTC)


def test_free_of_charge_costs_nothing(tmp_path: Path) -> None:
    # One FLAT component of 0.00 with step_size 0 and no VAT, as the module writes it.
    path = written(
        tmp_path, example({"price_components": [component("FLAT", "0.00", None, 0)]}, id="15")
    )
    free, _ = accepted(path)
    assert free.elements[0].price_components[0].step_size == 0
    periods = ((0, {"ENERGY": "20", "TIME": "1.5"}), (90, {"PARKING_TIME": "0.5"}))
    out = price_command(tmp_path, path, cdr_document(*periods, end=120))
    assert out["total_cost"] == {"excl_vat": Decimal("0.0000"), "incl_vat": Decimal("0.0000")}
    assert out["total_energy"] == Decimal("20.0000") and out["currency"] == "EUR"
    charged = priced(free, *periods, end=120)
    assert [(line.dimension, line.cost.excl_vat) for line in charged.lines] == [
        ("FLAT", Decimal("0.0000"))
    ]


def test_the_put_example_without_last_updated_is_accepted(tmp_path: Path) -> None:
    document = example({"price_components": [component("TIME", "2.00", "10.0", 300)]}, id="12")
    del document["last_updated"]
    put, _ = accepted(written(tmp_path, document))
    assert put.last_updated is None
    # 2 h 31 min of charging, billed in steps of 5 minutes: 2 h 35 min at 2.00/h.
    assert totals(priced(put, (0, {"TIME": minutes(151)}), end=151)) == ("5.17", "5.68")


EXPIRE_FEE = example(
    {
        "price_components": [component("FLAT", "4.00", "20.0", 1)],
        "restrictions": {"reservation": "RESERVATION_EXPIRES"},
    },
    {
        "price_components": [component("TIME", "2.00", "20.0", 600)],
        "restrictions": {"reservation": "RESERVATION"},
    },
    {
        "price_components": [
            component("FLAT", "0.50", "20.0", 1),
            component("ENERGY", "0.25", "10.0", 1),
        ]
    },
)
EXPIRE_TIME = example(
    {
        "price_components": [component("TIME", "6.00", "20.0", 600)],
        "restrictions": {"reservation": "RESERVATION_EXPIRES"},
    },
    {
        "price_components": [component("TIME", "3.00", "20.0", 600)],
        "restrictions": {"reservation": "RESERVATION"},
    },
    {
        "price_components": [
            component("FLAT", "0.50", "20.0", 1),
            component("ENERGY", "0.25", "10.0", 1),
        ]
    },
)
USED_22_MINUTES = ((0, {"RESERVATION_TIME": minutes(22)}), (22, {"ENERGY": "20"}))


@pytest.mark.parametrize(
    ("document", "used", "expired_minutes", "expired"),
    [
        (EXPIRE_FEE, ("6.50", "7.30"), 60, ("6.00", "7.20")),
        (EXPIRE_TIME, ("7.00", "7.90"), 90, ("9.00", "10.80")),
    ],
    ids=["reservation_with_expire_fee", "reservation_with_expire_time"],
)
def test_reservations_used_and_expired(
    tmp_path: Path,
    document: dict[str, Any],
    used: tuple[str, str],
    expired_minutes: int,
    expired: tuple[str, str],
) -> None:
    tariff, _ = accepted(written(tmp_path, document))
    # Used after 22 minutes, billed as 30 (steps of 10 minutes), then 20 kWh are charged.
    assert totals(priced(tariff, *USED_22_MINUTES, end=90)) == used
    unused = (0, {"RESERVATION_TIME": minutes(expired_minutes)})
    assert totals(priced(tariff, unused, end=expired_minutes)) == expired
