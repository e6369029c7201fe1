"""The default tariff, and invoices priced to the currency's minor unit."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from chargeledger.core import codec
from chargeledger.core.events import Invoice, SessionEvent
from chargeledger.core.log_port import Position
from chargeledger.invoicing import tariffs
from chargeledger.invoicing.cdr_json import dumps
from chargeledger.invoicing.invoices import InvoiceProcessor
from chargeledger.invoicing.ocpi import CdrSkeleton
from chargeledger.invoicing.tariff import TariffError, load_tariff, parse_tariff
from tests.revisions import session_revision


def tariff_json(
    price: Any = "0.25", vat: Any = "20.0", step_size: int = 1, currency: str = "EUR", **extra: Any
) -> str:
    component = {"type": "ENERGY", "price": price, "step_size": step_size}
    if vat is not None:
        component["vat"] = vat
    body = {
        "country_code": "NL",
        "party_id": "CLD",
        "id": "T1",
        "currency": currency,
        "elements": [{"price_components": [component]}],
        "last_updated": "2026-01-01T00:00:00Z",
        **extra,
    }
    # Prices are JSON numbers in OCPI: write them unquoted.
    return json.dumps(body).replace(f'"{price}"', str(price)).replace(f'"{vat}"', str(vat))


def test_prices_are_read_exactly_not_as_floats() -> None:
    tariff = parse_tariff(tariff_json(price="0.1"))
    assert tariff.elements[0].price_components[0].price == Decimal("0.1")


def invoice_for(text: str, energy_wh: int) -> Invoice:
    processor = InvoiceProcessor(parse_tariff(text), issuer="CL", codec=codec)
    event = session_revision("s", energy_wh=energy_wh)
    _, [invoice] = processor.evolve(processor.initial_state(), event, Position("s", 0, 0))
    assert isinstance(invoice, Invoice)
    return invoice


def test_energy_price_with_vat_rounded_half_up_to_cents() -> None:
    [line] = invoice_for(tariff_json(price="0.25", vat="20.0"), 12_345).lines
    # 12.345 kWh * 0.25 = 3.08625 -> 3.09; VAT 20 % of 3.09 = 0.618 -> 0.62
    assert line.quantity == "12.345" and line.unit == "kWh"
    assert (line.amount_excl_vat, line.vat_amount, line.amount_incl_vat) == ("3.09", "0.62", "3.71")


def test_half_cent_rounds_up() -> None:
    text = tariff_json(price="0.5", vat="0")
    assert invoice_for(text, 1_001).total_excl_vat == "0.50"  # 0.5005 EUR
    assert invoice_for(text, 1_010).total_excl_vat == "0.51"  # 0.505 EUR


def test_step_size_bills_whole_blocks_of_wh() -> None:
    [line] = invoice_for(tariff_json(price="1", step_size=500), 1_201).lines
    assert line.quantity == "1.500" and line.amount_excl_vat == "1.50"


def test_missing_vat_means_no_vat() -> None:
    [line] = invoice_for(tariff_json(vat=None), 1_000).lines
    assert line.vat_rate_percent == "" and line.vat_amount == "0"


def test_currency_minor_units() -> None:
    invoice = invoice_for(tariff_json(price="38", vat="10", currency="JPY"), 12_345)
    assert invoice.total_excl_vat == "469"  # 469.11 -> 469 yen, no decimals
    assert invoice.total_vat == "47"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not valid JSON"),
        (tariff_json(currency="euro"), "currency"),
        (tariff_json(price="-1"), "price"),
        (
            tariff_json().replace(
                '"elements": [{', '"elements": [{"restrictions": {"end_date": "2026-02-30"}, '
            ),
            "end_date",  # a day that does not exist would fail every session it prices
        ),
    ],
)
def test_bad_tariffs_get_one_clear_error(text: str, message: str) -> None:
    with pytest.raises(TariffError, match=message):
        parse_tariff(text)


def document() -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(tariff_json(), parse_float=Decimal)
    return parsed


def component_of(doc: dict[str, Any]) -> dict[str, Any]:
    component: dict[str, Any] = doc["elements"][0]["price_components"][0]
    return component


def both_ways(doc: dict[str, Any]) -> list[str]:
    """What ``--tariff FILE`` and ``PUT /api/v1/tariffs/{id}`` (``tariffs put``) say of it."""
    messages = []
    with pytest.raises(TariffError) as from_file:
        parse_tariff(dumps(doc), "night.json")
    messages.append(str(from_file.value))
    with pytest.raises(tariffs.TariffError) as from_put:
        tariffs.parse_tariff(doc)
    messages.append(str(from_put.value))
    return messages


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("step_size", -1, "step_size: Input should be greater than or equal to 0"),
        ("step_size", Decimal("0.5"), "step_size: Input should be a valid integer"),
        ("price", Decimal("-0.25"), "price: Input should be greater than or equal to 0"),
        ("vat", Decimal("-20"), "vat: Input should be greater than or equal to 0"),
        ("type", "KWH", "type: Input should be 'ENERGY', 'FLAT', 'PARKING_TIME' or 'TIME'"),
    ],
)
def test_a_bad_price_component_is_refused_naming_the_field(
    field: str, value: Any, message: str
) -> None:
    doc = document()
    component_of(doc)[field] = value
    for said in both_ways(doc):
        assert f"elements.0.price_components.0.{message}" in said


@pytest.mark.parametrize(
    "path",
    [
        "country_code",
        "party_id",
        "id",
        "currency",
        "elements",
        "elements.0.price_components",
        "elements.0.price_components.0.type",
        "elements.0.price_components.0.price",
        "elements.0.price_components.0.step_size",
    ],
)
def test_a_missing_required_field_is_refused_by_name(path: str) -> None:
    doc = document()
    *parents, name = path.split(".")
    holder: Any = doc
    for part in parents:
        holder = holder[int(part)] if part.isdigit() else holder[part]
    del holder[name]
    for said in both_ways(doc):
        assert f"{path}: Field required" in said


def test_step_size_0_is_accepted() -> None:
    doc = document()
    component_of(doc)["step_size"] = 0
    assert tariffs.parse_tariff(doc).elements[0].price_components[0].step_size == 0


def test_ocpi_date_times_without_a_zone_are_utc() -> None:
    doc = document()
    doc.update(last_updated="2015-06-29T20:39:09", end_date_time="2019-06-30T23:59:59.5")
    tariff = tariffs.parse_tariff(doc)
    assert tariff.last_updated == datetime(2015, 6, 29, 20, 39, 9, tzinfo=UTC)
    assert tariff.end_date_time == datetime(2019, 6, 30, 23, 59, 59, 500_000, tzinfo=UTC)
    cdr = CdrSkeleton.model_validate(
        {
            "start_date_time": "2026-03-02T09:00:00",
            "end_date_time": "2026-03-02T10:00:00.123",
            "charging_periods": [
                {
                    "start_date_time": "2026-03-02T09:00:00",
                    "dimensions": [{"type": "ENERGY", "volume": 1}],
                }
            ],
        }
    )
    assert cdr.start_date_time == datetime(2026, 3, 2, 9, tzinfo=UTC)
    # A zone that is written is kept.
    doc.update(last_updated="2015-06-29T22:39:09+02:00")
    assert tariffs.parse_tariff(doc).last_updated == datetime(2015, 6, 29, 20, 39, 9, tzinfo=UTC)


def test_missing_tariff_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(TariffError, match=r"cannot read tariff file .*nope\.json"):
        load_tariff(tmp_path / "nope.json")


def test_bundled_sample_tariff_loads() -> None:
    assert load_tariff(None).elements[0].price_components[0].price == Decimal("0.39")


def run(events: list[SessionEvent]) -> list[Invoice]:
    processor = InvoiceProcessor(parse_tariff(tariff_json()), issuer="CL", codec=codec)
    state = processor.initial_state()
    invoices = []
    for i, event in enumerate(events):
        state = processor.load_state(json.loads(json.dumps(processor.dump_state(state))))
        state, out = processor.evolve(state, event, Position("ledger.sessions", 0, i))
        invoices += out
    return invoices  # type: ignore[return-value]


def test_one_invoice_per_completed_session_with_gapless_numbers() -> None:
    invoices = run(
        [
            session_revision("a", status="active", revision=1),
            session_revision("a"),
            session_revision("a"),  # a redelivered completion
            session_revision("b"),
            session_revision("c", at=datetime(2027, 1, 1, 0, 5, tzinfo=UTC)),
            session_revision("d"),
        ]
    )
    assert [(i.session_id, i.invoice_number) for i in invoices] == [
        ("a", "CL-2026-000001"),
        ("b", "CL-2026-000002"),
        ("c", "CL-2027-000001"),
        ("d", "CL-2026-000003"),
    ]
    a = invoices[0]
    assert (a.total_excl_vat, a.total_vat, a.total_incl_vat, a.currency) == (
        "2.50",
        "0.50",
        "3.00",
        "EUR",
    )
    assert a.lines[0].quantity == "10.000" and a.source_event_id == "a:2"
    assert a.event_id == "invoice:CL-2026-000001"


def test_a_late_change_is_a_credit_note_and_a_new_invoice() -> None:
    first = session_revision("a")
    corrected = dataclasses.replace(
        first, revision=3, event_id="a:3", energy_wh=12_000, meter_stop_wh=12_000
    )
    documents = run([first, corrected, corrected, session_revision("b")])
    assert [
        (d.invoice_number, d.document_type, d.cancels, d.replaces, d.total_incl_vat)
        for d in documents
    ] == [
        ("CL-2026-000001", "invoice", None, None, "3.00"),
        ("CL-2026-000002", "credit_note", "CL-2026-000001", None, "-3.00"),
        ("CL-2026-000003", "invoice", None, "CL-2026-000001", "3.60"),  # 12 kWh
        ("CL-2026-000004", "invoice", None, None, "3.00"),
    ]
    credit = documents[1]
    assert (credit.total_excl_vat, credit.total_vat) == ("-2.50", "-0.50")
    assert credit.lines[0].description == "Cancels invoice CL-2026-000001"


def test_a_minimum_price_is_a_line_of_its_own() -> None:
    text = tariff_json(price="0.25", vat="10", min_price={"excl_vat": "0.50", "incl_vat": "0.55"})
    invoice = invoice_for(text, 1_000)  # 0.25 EUR of energy, raised to the minimum
    assert [
        (line.description, line.amount_excl_vat, line.vat_amount) for line in invoice.lines
    ] == [
        ("Energy", "0.25", "0.03"),
        ("Minimum price", "0.25", "0.02"),
    ]
    assert (invoice.total_excl_vat, invoice.total_incl_vat) == ("0.50", "0.55")
