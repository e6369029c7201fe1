"""A ledger session becomes an OCPI CDR the pricing engine prices: the scenario table's
charging periods, priced with time-of-day and parking tariffs."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from zoneinfo import ZoneInfo

from chargeledger.core.events import SessionEvent
from chargeledger.invoicing.cdrs import cdr_skeleton
from chargeledger.invoicing.ocpi import Tariff
from chargeledger.invoicing.pricing import price
from chargeledger.ledger.sessions import SessionsProcessor
from tests.fold import fold
from tests.ledger_scenarios import Cp, register, ts

UTC = ZoneInfo("UTC")


def completed_session(cp: Cp) -> SessionEvent:
    last: SessionEvent | None = None
    for out in fold(SessionsProcessor(), cp.frames)[1]:
        if isinstance(out, SessionEvent):
            last = out
    assert last is not None and last.status == "completed"
    return last


def tariff(elements: str) -> Tariff:
    return Tariff.model_validate(
        json.loads(
            '{"country_code": "DE", "party_id": "CLG", "id": "T", "currency": "EUR",'
            f' "elements": {elements}, "last_updated": "2026-01-01T00:00:00Z"}}',
            parse_float=Decimal,
        )
    )


def test_charging_and_parking_periods_become_time_and_parking_time() -> None:
    session = completed_session(
        Cp("CP-1")
        .start(7, 0, ts(0))
        .meter(7, ts(30), register("6000"))
        .status("SuspendedEV", ts(30))
        .stop(7, 6000, ts(50))
    )
    cdr = cdr_skeleton(session)
    assert [
        (p.volume("ENERGY"), p.volume("TIME"), p.volume("PARKING_TIME"))
        for p in cdr.charging_periods
    ] == [
        (Decimal(6), Decimal("0.5"), None),
        (Decimal(0), None, Decimal(20) / 60),
    ]
    priced = price(
        cdr,
        tariff(
            '[{"price_components": [{"type": "ENERGY", "price": 0.30, "vat": 25, "step_size": 1},'
            ' {"type": "PARKING_TIME", "price": 6.00, "vat": 25, "step_size": 600}]}]'
        ),
        UTC,
    )
    # 6 kWh at 0.30 = 1.80; 20 minutes of parking at 6.00/h = 2.00.
    assert priced.total_energy_cost.excl_vat == Decimal("1.8000")
    assert priced.total_parking_cost.excl_vat == Decimal("2.0000")
    assert priced.total_cost.incl_vat == Decimal("4.7500")


def test_a_session_without_periods_is_one_charging_period() -> None:
    session = completed_session(Cp("CP-1").start(7, 100, ts(0)).stop(7, 2100, ts(30)))
    session = dataclasses.replace(session, charging_periods=())
    [period] = cdr_skeleton(session).charging_periods
    assert (period.volume("ENERGY"), period.volume("TIME")) == (Decimal(2), Decimal("0.5"))
