"""How long each console page takes to show its data, with 1,000 stations and 100,000 sessions.

    .venv/bin/python benchmarks/console_pages.py [--stations 1000 --sessions 100000 --runs 7]

Fills the ledger's projections of a fresh embedded PostgreSQL with a fleet's history (stations,
connectors, presence and status history, sessions with their hourly energy, invoices, and the
frames of one session), starts `chargeledger up` on it with access checking on, logs in with
Debian's Chromium (Playwright) and opens every page of the console ``--runs`` times. A page
counts from the start of its navigation until it has drawn the data of all its API calls
(``body[data-ready]``). Prints the median, the 95th percentile and the slowest time of each
page against the 300 ms target; asserts nothing.

The history is written into the projections directly (not through the gateway and the
processors, which other benchmarks measure): only the read path is measured here.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.support import free_port

PASSWORD = "benchmark-password-1"
TARGET_MS = 300
CHROMIUM = os.environ.get("CHARGELEDGER_CHROMIUM", "/usr/bin/chromium")


SEED = """
WITH s AS (SELECT n, 'BENCH-' || lpad(n::text, 4, '0') AS id
           FROM generate_series(1, %(stations)s) n)
INSERT INTO stations (station_id, password_hash, enabled, revision, created_at, updated_at)
SELECT id, NULL, true, 1, now() - interval '200 days', now() - interval '200 days' FROM s;

INSERT INTO station_info (station_id, ocpp_version, vendor, model, serial_number,
  firmware_version, last_boot_at, last_heartbeat_at, last_seen_at)
SELECT station_id, CASE WHEN n %% 3 = 0 THEN 'ocpp2.0.1' ELSE 'ocpp1.6' END,
  (ARRAY['Alfen', 'ABB', 'Keba', 'Wallbox'])[1 + n %% 4], 'Model ' || (n %% 7),
  'SN' || n, '5.' || (n %% 9) || '.1', now() - interval '8 days', now() - interval '1 minute',
  now() - (n %% 300) * interval '1 second'
FROM (SELECT station_id, row_number() OVER (ORDER BY station_id) AS n FROM stations) s;

-- Online for eight days; one station in five went offline this morning.
INSERT INTO presence_history (stream, partition, "offset", station_id, online, connection_id,
  occurred_at)
SELECT 'ocpp.connections', 0, n * 2, station_id, true, 'c' || n, now() - interval '8 days'
FROM (SELECT station_id, row_number() OVER (ORDER BY station_id) AS n FROM stations) s
UNION ALL
SELECT 'ocpp.connections', 0, n * 2 + 1, station_id, false, 'c' || n,
  date_trunc('day', now()) + interval '6 hours'
FROM (SELECT station_id, row_number() OVER (ORDER BY station_id) AS n FROM stations) s
WHERE n %% 5 = 0;

INSERT INTO station_presence (station_id, online, connection_id, gateway_id, since)
SELECT DISTINCT ON (station_id) station_id, online, connection_id, 'gw-1', occurred_at
FROM presence_history ORDER BY station_id, occurred_at DESC;

-- 100 days of sessions, the same number each day, spread over the stations.
INSERT INTO sessions (session_id, revision, station_id, connector_id, transaction_id, id_tag,
  started_at, stopped_at, meter_start_wh, meter_stop_wh, last_meter_wh, energy_wh, stop_reason,
  status, source_stream, source_partition, source_offset, transaction_ref, ocpp_version,
  evse_id, last_meter_at, flags, review_required, charging_periods)
SELECT st || ':' || n, 1, st, 1 + n %% 2, n, 'TAG-' || (n %% 5000),
  start, start + interval '50 minutes', 1000000 + n, 1000000 + n + wh, 1000000 + n + wh, wh,
  'Local', 'completed', 'ocpp.frames', 0, n, n::text, 'ocpp1.6', NULL,
  start + interval '50 minutes', '{}', false,
  jsonb_build_array(jsonb_build_object('start', start, 'end', start + interval '40 minutes',
    'state', 'charging', 'station_status', 'Charging', 'energy_wh', wh, 'duration_ms', 2400000,
    'max_power_w', 11000, 'min_power_w', 3000, 'max_current_ma', 16000, 'min_current_ma', 5000),
   jsonb_build_object('start', start + interval '40 minutes', 'end',
    start + interval '50 minutes', 'state', 'parking', 'station_status', 'SuspendedEV',
    'energy_wh', 0, 'duration_ms', 600000, 'max_power_w', 0, 'min_power_w', 0,
    'max_current_ma', 0, 'min_current_ma', 0))
FROM (SELECT n, 'BENCH-' || lpad((1 + n %% %(stations)s)::text, 4, '0') AS st,
        date_trunc('day', now()) - (n / %(per_day)s) * interval '1 day'
          + ((n * 7919) %% 1380) * interval '1 minute' AS start,
        5000 + (n * 104729) %% 40000 AS wh
      FROM generate_series(0::bigint, %(sessions)s - 1) n) x;

INSERT INTO session_energy (session_id, hour, station_id, evse_id, connector_id, id_tag,
  energy_wh)
SELECT session_id, date_trunc('hour', started_at), station_id, -1, connector_id, id_tag,
  energy_wh FROM sessions;

-- Each session's connector went Charging and back to Available; now each is Available.
INSERT INTO status_history (stream, partition, "offset", station_id, evse_id, connector_id,
  status, previous_status, error_code, occurred_at)
SELECT 'ledger.station-status', 0, 2 * transaction_id, station_id, -1, connector_id,
  'Charging', 'Available', 'NoError', started_at FROM sessions
UNION ALL
SELECT 'ledger.station-status', 0, 2 * transaction_id + 1, station_id, -1, connector_id,
  'Available', 'Charging', 'NoError', stopped_at FROM sessions;

INSERT INTO connector_status (station_id, evse_id, connector_id, status, error_code, since)
SELECT station_id, -1, c, CASE WHEN n %% 50 = 0 AND c = 1 THEN 'Faulted' ELSE 'Available' END,
  CASE WHEN n %% 50 = 0 AND c = 1 THEN 'GroundFailure' ELSE 'NoError' END,
  now() - interval '2 hours'
FROM (SELECT station_id, row_number() OVER (ORDER BY station_id) AS n FROM stations) s,
  generate_series(1, 2) c;

INSERT INTO invoices (invoice_number, issuer, session_id, station_id, connector_id,
  transaction_id, id_tag, started_at, stopped_at, meter_start_wh, meter_stop_wh, energy_wh,
  tariff_id, currency, lines, total_excl_vat, total_vat, total_incl_vat, source_event_id,
  stream, partition, "offset", transaction_ref)
SELECT 'CL-2026-' || lpad(transaction_id::text, 6, '0'), 'bench', session_id, station_id,
  connector_id, transaction_id, id_tag, started_at, stopped_at, meter_start_wh, meter_stop_wh,
  energy_wh, 'SAMPLE-ENERGY', 'EUR',
  jsonb_build_array(jsonb_build_object('description', 'Energy', 'quantity',
    (energy_wh / 1000.0)::text, 'unit', 'kWh', 'unit_price_excl_vat', '0.3900',
    'vat_rate_percent', '19', 'amount_excl_vat', round(energy_wh * 0.00039, 2)::text,
    'vat_amount', round(energy_wh * 0.0000741, 2)::text,
    'amount_incl_vat', round(energy_wh * 0.0004641, 2)::text)),
  round(energy_wh * 0.00039, 2), round(energy_wh * 0.0000741, 2),
  round(energy_wh * 0.0004641, 2), 'ev-' || transaction_id, 'invoicing.invoices', 0,
  transaction_id, transaction_id::text
FROM sessions;
"""


def frames_of(station_id: str, tx: int, start: Any) -> list[tuple[Any, ...]]:
    """The frames of one session (start, a reading every 5 minutes, stop), with answers."""
    import json
    from datetime import timedelta

    calls: list[tuple[str, dict[str, Any]]] = [
        (
            "StartTransaction",
            {"connectorId": 1, "idTag": "TAG-1", "meterStart": 0, "timestamp": start.isoformat()},
        ),
    ]
    for k in range(1, 10):
        at = (start + timedelta(minutes=5 * k)).isoformat()
        sampled = [
            {"value": str(k * 900), "unit": "Wh", "measurand": "Energy.Active.Import.Register"},
            {"value": "10800", "unit": "W", "measurand": "Power.Active.Import"},
        ]
        calls.append(
            (
                "MeterValues",
                {
                    "connectorId": 1,
                    "transactionId": tx,
                    "meterValue": [{"timestamp": at, "sampledValue": sampled}],
                },
            )
        )
    calls.append(
        (
            "StopTransaction",
            {
                "transactionId": tx,
                "meterStop": 8100,
                "timestamp": (start + timedelta(minutes=50)).isoformat(),
            },
        )
    )
    rows = []
    for n, (action, payload) in enumerate(calls):
        for direction, raw in (
            ("INBOUND", [2, str(n), action, payload]),
            ("OUTBOUND", [3, str(n), {}]),
        ):
            offset = 10_000_000 + len(rows)
            rows.append(
                (
                    "ocpp.frames",
                    0,
                    offset,
                    f"bench-{offset}",
                    station_id,
                    "ocpp1.6",
                    direction,
                    raw[0],
                    False,
                    None,
                    str(n),
                    action,
                    json.dumps(raw).encode(),
                    "gw-1",
                    "c1",
                    len(rows),
                    start,
                )
            )
    return rows


def seed(dsn: str, stations: int, sessions: int) -> str:
    """Fill the projections; returns the id of the session that has frames."""
    with psycopg.connect(dsn) as conn:
        figures = {"stations": stations, "sessions": sessions, "per_day": max(1, sessions // 100)}
        for statement in SEED.split(";\n"):
            if statement.strip():
                conn.execute(statement, figures)
        station_id, tx, start = conn.execute(
            "SELECT station_id, transaction_id, started_at FROM sessions ORDER BY started_at DESC"
            " LIMIT 1"
        ).fetchone()
        rows = frames_of(station_id, tx, start)
        with conn.cursor() as cur:
            cur.executemany(
                'INSERT INTO frames (stream, partition, "offset", event_id, station_id,'
                " ocpp_version, direction, message_type, rejected, rejection_reason, unique_id,"
                " action, raw, gateway_id, connection_id, connection_seq, received_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                rows,
            )
        conn.execute(
            "UPDATE sessions SET frame_positions = %s WHERE transaction_id = %s",
            ([f"ocpp.frames/0/{r[2]}" for r in rows], tx),
        )
        conn.execute("ANALYZE")
        return f"{station_id}:{tx}"


async def measure(base: str, pages: list[tuple[str, str, str]], runs: int) -> None:
    from playwright.async_api import async_playwright, expect

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        await page.goto(f"{base}/")
        await page.get_by_label("User name").fill("bench")
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Log in").click()
        body = page.locator("body")
        await expect(body).to_have_attribute("data-ready", "fleet", timeout=60_000)
        print(f"{'':<32} {'opened in a new tab':>26}   {'from another page':>26}")
        print(
            f"{'page':<32} {'median':>8} {'p95':>8} {'max':>8}   {'median':>8} {'p95':>8}"
            f" {'max':>8}   target {TARGET_MS} ms (median)"
        )
        over = []
        for label, route, name in pages:
            opened, moved = [], []
            for run in range(runs + 1):
                await page.goto("about:blank")
                began = time.perf_counter()
                await page.goto(f"{base}/#{route}")
                await expect(body).to_have_attribute("data-ready", name, timeout=60_000)
                took_ms = (time.perf_counter() - began) * 1000
                await page.goto(f"{base}/#/not-a-page")
                await expect(body).to_have_attribute("data-ready", "notfound", timeout=60_000)
                began = time.perf_counter()
                await page.goto(f"{base}/#{route}")
                await expect(body).to_have_attribute("data-route", f"#{route}", timeout=60_000)
                await expect(body).to_have_attribute("data-ready", name, timeout=60_000)
                if run:  # the first run warms the caches
                    opened.append(took_ms)
                    moved.append((time.perf_counter() - began) * 1000)
            figures = []
            for times in (opened, moved):
                times.sort()
                p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
                figures.append(
                    f"{statistics.median(times):>6.0f}ms {p95:>6.0f}ms {times[-1]:>6.0f}ms"
                )
            worst = max(statistics.median(opened), statistics.median(moved))
            if worst > TARGET_MS:
                over.append(label)
            verdict = "ok" if worst <= TARGET_MS else "OVER"
            print(f"{label:<32} {figures[0]}   {figures[1]}   {verdict}")
        print(f"pages over {TARGET_MS} ms: {', '.join(over) if over else 'none'}")
        await browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stations", type=int, default=1000)
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--only", default="", help="Only the pages whose name has this.")
    args = parser.parse_args()
    from chargeledger.core.db import migrate, start_embedded, stop_embedded

    with tempfile.TemporaryDirectory(prefix="chargeledger-console-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        print(f"seeding {args.stations:,} stations and {args.sessions:,} sessions…", flush=True)
        began = time.perf_counter()
        dsn = start_embedded(data_dir)
        migrate(dsn)
        session_id = seed(dsn, args.stations, args.sessions)
        stop_embedded(data_dir)
        print(f"seeded in {time.perf_counter() - began:.0f} s", flush=True)
        cli = [sys.executable, "-m", "chargeledger.cli"]
        subprocess.run(
            [
                *cli,
                "users",
                "add",
                "bench",
                "--role",
                "admin",
                "--password-stdin",
                "--data-dir",
                str(data_dir),
            ],
            input=PASSWORD,
            text=True,
            check=True,
            capture_output=True,
        )
        http_port, ocpp_port = free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHARGELEDGER_")}
        up = subprocess.Popen(
            [
                *cli,
                "up",
                "--data-dir",
                str(data_dir),
                "--http-port",
                str(http_port),
                "--ocpp-port",
                str(ocpp_port),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        try:
            assert up.stdout is not None
            for line in up.stdout:
                if "Stop with Ctrl-C." in line:
                    break
                if "Stop with" not in line and "error" in line.lower():
                    print(line, end="")
            else:
                raise SystemExit("chargeledger up did not start")
            station = session_id.split(":")[0]
            invoice = f"CL-2026-{int(session_id.split(':')[1]):06d}"
            pages = [
                ("fleet (1,000 stations)", "/", "fleet"),
                ("fleet, faulted only", "/?fault=true", "fleet"),
                ("station", f"/stations/{station}", "station"),
                ("sessions", "/sessions", "sessions"),
                ("sessions of a station", f"/sessions?station_id={station}", "sessions"),
                ("session with its curve", f"/sessions/{session_id}", "session"),
                ("invoices with totals", "/invoices", "invoices"),
                ("invoice", f"/invoices/{invoice}", "invoice"),
                ("evidence", f"/invoices/{invoice}/evidence", "evidence"),
                ("review queue", "/review", "review"),
                ("tariffs", "/tariffs", "tariffs"),
                ("energy per day, 14 days", "/energy", "energy"),
                ("energy per station, 14 days", "/energy?group_by=station", "energy"),
                ("users", "/users", "users"),
            ]
            pages = [p for p in pages if args.only in p[0]]
            asyncio.run(measure(f"http://127.0.0.1:{http_port}", pages, args.runs))
        finally:
            up.terminate()
            up.wait(60)


if __name__ == "__main__":
    main()
