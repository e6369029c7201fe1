"""A tiny OCPP 1.6J charge point for the README tour: one charging session, raw frames.

    .venv/bin/python examples/charge_point.py [--url ws://127.0.0.1:9000/ocpp] [--station CP-DEMO]
        [--energy-wh 12345]

It boots, authorizes an id tag, starts a transaction, sends two meter values (one in Wh, one in
kWh) and stops. Every frame it sends and receives is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus, InvalidURI


class ChargePoint:
    def __init__(self, websocket: ClientConnection) -> None:
        self._websocket = websocket
        self._next_id = 0

    async def call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        self._next_id += 1
        frame = json.dumps([2, str(self._next_id), action, payload])
        print(f"-> {frame}")
        await self._websocket.send(frame)
        answer = json.loads(await self._websocket.recv())
        print(f"<- {json.dumps(answer)}")
        if answer[0] != 3:
            raise RuntimeError(f"{action} was answered with an error: {answer}")
        return dict(answer[2])


def at(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


async def session(url: str, station: str, energy_wh: int) -> None:
    async with connect(f"{url.rstrip('/')}/{station}", subprotocols=["ocpp1.6"]) as websocket:  # type: ignore[list-item]
        cp = ChargePoint(websocket)
        start = datetime.now(UTC).replace(microsecond=0)
        meter_start_wh = 1_000_000
        await cp.call(
            "BootNotification", {"chargePointVendor": "Example", "chargePointModel": "Demo 22"}
        )
        await cp.call(
            "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Preparing"}
        )
        await cp.call("Authorize", {"idTag": "DEMO-TAG"})
        started = await cp.call(
            "StartTransaction",
            {
                "connectorId": 1,
                "idTag": "DEMO-TAG",
                "meterStart": meter_start_wh,
                "timestamp": at(start),
            },
        )
        transaction_id = started["transactionId"]
        half = meter_start_wh + energy_wh // 2
        end = meter_start_wh + energy_wh
        for minutes, value, unit in ((15, str(half), "Wh"), (30, f"{end / 1000:.3f}", "kWh")):
            sample = {"value": value, "unit": unit, "measurand": "Energy.Active.Import.Register"}
            await cp.call(
                "MeterValues",
                {
                    "connectorId": 1,
                    "transactionId": transaction_id,
                    "meterValue": [
                        {
                            "timestamp": at(start + timedelta(minutes=minutes)),
                            "sampledValue": [sample],
                        }
                    ],
                },
            )
        await cp.call(
            "StopTransaction",
            {
                "transactionId": transaction_id,
                "meterStop": end,
                "timestamp": at(start + timedelta(minutes=31)),
                "reason": "EVDisconnected",
            },
        )
        print(f"\nsession {station}:{transaction_id} done")
        print(f"see it at /api/v1/sessions?station_id={station}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description="One OCPP 1.6J charging session against ChargeLedger."
    )
    parser.add_argument(
        "--url", default="ws://127.0.0.1:9000/ocpp", help="OCPP endpoint without station id"
    )
    parser.add_argument("--station", default="CP-DEMO", help="station id (last path segment)")
    parser.add_argument("--energy-wh", type=int, default=12_345, help="energy to charge, in Wh")
    args = parser.parse_args()
    try:
        asyncio.run(session(args.url, args.station, args.energy_wh))
    except (OSError, InvalidStatus, InvalidURI) as exc:
        sys.exit(f"charge_point: cannot talk to {args.url}: {exc}; is `make up` running?")


if __name__ == "__main__":
    main()
