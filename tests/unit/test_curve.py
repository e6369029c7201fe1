"""The charging curve from a session's CALLs: what the console's session page draws."""

from __future__ import annotations

from datetime import UTC, datetime

from chargeledger.ledger.curve import curve


def at(minute: int) -> str:
    return f"2026-05-02T10:{minute:02d}:00Z"


def reading(minute: int, *sampled: tuple[str, str, str]) -> dict[str, object]:
    return {
        "timestamp": at(minute),
        "sampledValue": [{"value": v, "unit": u, "measurand": m} for v, u, m in sampled],
    }


REGISTER = "Energy.Active.Import.Register"
POWER = "Power.Active.Import"


def test_energy_counts_from_the_first_register_value_and_power_is_read_or_averaged() -> None:
    calls = [
        ("StartTransaction", {"connectorId": 1, "meterStart": 5_000, "timestamp": at(0)}),
        (
            "MeterValues",
            {"meterValue": [reading(15, ("7.75", "kWh", REGISTER), ("11000", "W", POWER))]},
        ),
        ("MeterValues", {"meterValue": [reading(30, ("10500", "Wh", REGISTER))]}),
        ("StopTransaction", {"meterStop": 10_500, "timestamp": at(45), "transactionData": []}),
    ]
    points = curve(calls)
    assert [p.at for p in points] == [
        datetime(2026, 5, 2, 10, m, tzinfo=UTC) for m in (0, 15, 30, 45)
    ]
    assert [p.energy_wh for p in points] == [0, 2_750, 5_500, 5_500]
    # Read at 10:15; averaged over 15 minutes at 10:30 (2,750 Wh in a quarter hour); 0 after.
    assert [(p.power_w, p.power_derived) for p in points] == [
        (None, False),
        (11_000, False),
        (11_000, True),
        (0, True),
    ]


def test_2_x_transaction_events_and_readings_that_are_not_numbers() -> None:
    calls = [
        (
            "TransactionEvent",
            {
                "eventType": "Updated",
                "meterValue": [
                    {
                        "timestamp": at(5),
                        "sampledValue": [
                            {"value": 2.5, "measurand": REGISTER, "unitOfMeasure": {"unit": "kWh"}},
                            {"value": "garbage", "measurand": POWER},
                        ],
                    }
                ],
            },
        ),
        ("Heartbeat", {}),
        ("MeterValues", "not an object"),
    ]
    [point] = curve(calls)
    assert (point.register_wh, point.energy_wh, point.power_w) == (2_500, 0, None)
