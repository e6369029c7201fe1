"""Every list of the HTTP API comes in pages a client follows with ``after``; exports stream.

The real app and every processor on the real PostgreSQL log: frames appended, sessions,
invoices and CDRs derived from them, then read back page by page.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from psycopg_pool import AsyncConnectionPool

from chargeledger.api.app import EVENTS_PAGE_BYTES
from chargeledger.bootstrap import processors
from chargeledger.core import codec
from chargeledger.core.events import FRAMES
from chargeledger.core.log import PostgresLog, Record
from chargeledger.core.runtime import ProcessorRunner
from chargeledger.core.settings import Settings
from chargeledger.invoicing.tariff import load_tariff
from tests.integration.test_api_input import build_app
from tests.ledger_scenarios import Cp, register, ts
from tests.support import REPO

STATIONS = ("CP-PAGE-A", "CP-PAGE-B", "CP-PAGE-C")


def traffic() -> list[Record]:
    records = []
    for n, station in enumerate(STATIONS):
        cp = (
            Cp(station)
            .boot()
            .status("Faulted", ts(n), error="GroundFailure")
            .status("Available", ts(n, 9))
            .start(1, 1000, ts(n))
            .meter(1, ts(n + 10), register("4000"))
            .stop(1, 5000 + n, ts(n + 20))
        )
        records += [Record(FRAMES, f.station_id, codec.encode(f)) for f in cp.frames]
    big = Cp("CP-PAGE-BIG").boot()
    for n in range(6):  # frames of 1 MiB each
        big.call("DataTransfer", {"vendorId": "V", "data": f"{n}" * (1 << 20)}, {"status": "Ok"})
    records += [Record(FRAMES, f.station_id, codec.encode(f)) for f in big.frames]
    return records


@pytest.fixture
async def api(pool: AsyncConnectionPool, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    log = PostgresLog(pool, partitions=2)
    await log.start()
    await log.append(traffic())
    settings = Settings(database_url=database_url, log_partitions=2)
    runners = [
        ProcessorRunner(processor, sink, log, pool)
        for processor, sink in processors(settings, load_tariff(None))
    ]
    tasks = [asyncio.create_task(r.run()) for r in runners]
    transport = httpx.ASGITransport(build_app(pool, log), raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            for _ in range(300):
                invoices = (await client.get("/api/v1/invoices")).json()
                if len(invoices) == len(STATIONS):
                    break
                await asyncio.sleep(0.1)
            else:
                sessions = (await client.get("/api/v1/sessions")).json()
                raise AssertionError(f"{invoices} invoices, not {len(STATIONS)}: {sessions}")
            yield client
    finally:
        for runner in runners:
            runner.stop()
        await asyncio.gather(*tasks)
        await log.close()


async def pages(
    api: httpx.AsyncClient, path: str, **params: Any
) -> tuple[list[Any], list[httpx.Response]]:
    """Every item of a list, following X-Next-After (and checking that Link says the same)."""
    answers = [await api.get(path, params=params)]
    while True:
        assert answers[-1].status_code == 200, answers[-1].text
        after = answers[-1].headers.get("X-Next-After")
        link = answers[-1].headers.get("Link")
        if after is None:
            assert link is None
            break
        url, rel = link.split("; ")
        assert rel == 'rel="next"'
        followed = await api.get(url.strip("<>"))
        assert followed.content == (await api.get(path, params={**params, "after": after})).content
        answers.append(followed)
    items = [item for a in answers for item in a.json()]
    return items, answers


async def test_every_list_pages_with_after_and_loses_nothing(api: httpx.AsyncClient) -> None:
    for n in range(5):
        assert (await api.post("/api/v1/tokens", json={"id_token": f"T-{n}"})).status_code == 201
    tokens, answers = await pages(api, "/api/v1/tokens", limit=2)
    assert [t["id_token"] for t in tokens] == [f"T-{n}" for n in range(5)]
    assert [len(a.json()) for a in answers] == [2, 2, 1]
    assert answers[0].headers["X-Next-After"] == "T-1"

    stations, answers = await pages(api, "/api/v1/stations", limit=2)
    assert [s["station_id"] for s in stations] == sorted([*STATIONS, "CP-PAGE-BIG"])
    assert len(answers) == 2

    sessions, answers = await pages(api, "/api/v1/sessions", limit=1)
    whole = (await api.get("/api/v1/sessions")).json()
    assert sessions == whole and len(sessions) == len(STATIONS) and len(answers) == 3

    invoices, answers = await pages(api, "/api/v1/invoices", limit=2)
    assert invoices == (await api.get("/api/v1/invoices")).json()
    assert [len(a.json()) for a in answers] == [2, 1]
    assert answers[0].headers["X-Next-After"] == invoices[1]["invoice_number"]

    cdrs, answers = await pages(api, "/api/v1/cdrs", limit=2)
    assert cdrs == (await api.get("/api/v1/cdrs")).json() and len(cdrs) == len(STATIONS)
    assert [len(a.json()) for a in answers] == [2, 1]

    changes, answers = await pages(api, "/api/v1/stations/CP-PAGE-A/status-history", limit=1)
    assert [c["status"] for c in changes] == ["Available", "Faulted"]  # station clock order
    faults, answers = await pages(api, "/api/v1/faults", limit=1)
    assert faults == (await api.get("/api/v1/faults")).json()
    assert len(answers) == max(1, len(faults))

    await api.put("/api/v1/stations/CP-PAGE-A/time-zone", json={"time_zone": "Europe/Berlin"})
    await api.put("/api/v1/stations/CP-PAGE-A/time-zone", json={"time_zone": "Europe/Paris"})
    zones, answers = await pages(api, "/api/v1/stations/CP-PAGE-A/time-zones", limit=1)
    assert [z["time_zone"] for z in zones] == ["Europe/Berlin", "Europe/Paris"]
    assert len(answers) == 2

    sample = json.loads((REPO / "services/invoicing/sample_tariff.json").read_text())
    for tariff_id in ("TARIFF-B", "TARIFF-A"):
        stored = await api.put(f"/api/v1/tariffs/{tariff_id}", json={**sample, "id": tariff_id})
        assert stored.status_code == 201, stored.text
        await api.post("/api/v1/tariff-assignments", json={"tariff_id": tariff_id})
    tariffs, answers = await pages(api, "/api/v1/tariffs", limit=1)
    assert [t["tariff_id"] for t in tariffs] == ["TARIFF-A", "TARIFF-B"] and len(answers) == 2
    assignments, answers = await pages(api, "/api/v1/tariff-assignments", limit=1)
    assert [a["tariff_id"] for a in assignments] == ["TARIFF-B", "TARIFF-A"]
    assert len(answers) == 2

    bad = await api.get("/api/v1/sessions", params={"after": "not-a-cursor"})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["query", "after"]


async def test_a_page_of_frames_holds_at_most_one_mib(api: httpx.AsyncClient) -> None:
    frames, answers = await pages(api, "/api/v1/events", station_id="CP-PAGE-BIG")
    assert len(frames) == 2 + 12  # the boot and six DataTransfer calls, with their answers
    assert [f["log_position"] for f in frames] == sorted(
        {f["log_position"] for f in frames}, key=lambda p: int(p.rsplit("/", 1)[1])
    )
    for answer in answers:
        raw = [len(f["raw"].encode()) for f in answer.json()]
        assert len(raw) == 1 or sum(raw) <= EVENTS_PAGE_BYTES, raw
    assert len(answers) >= 2
    assert answers[0].headers["X-Next-After"] == answers[0].json()[-1]["log_position"]

    # The older form still works: frames after an offset.
    first = answers[0].json()
    offset = int(first[0]["log_position"].rsplit("/", 1)[1])
    later = (
        await api.get(
            "/api/v1/events", params={"station_id": "CP-PAGE-BIG", "after_offset": offset}
        )
    ).json()
    assert later[0]["log_position"] == first[1]["log_position"]
    bad = await api.get("/api/v1/events", params={"station_id": "X", "after": "ocpp.frames/x/1"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "after"]


async def test_the_exports_stream_every_document(api: httpx.AsyncClient) -> None:
    invoices = (await api.get("/api/v1/invoices")).json()
    async with api.stream("GET", "/api/v1/invoices.csv") as answer:
        assert answer.status_code == 200
        assert "content-length" not in answer.headers  # sent as it is read
        text = "".join([chunk async for chunk in answer.aiter_text()])
    rows = list(csv.DictReader(io.StringIO(text)))
    assert sorted({r["invoice_number"] for r in rows}) == [i["invoice_number"] for i in invoices]
    async with api.stream("GET", "/api/v1/cdrs") as answer:
        assert "content-length" not in answer.headers
        cdrs = json.loads(b"".join([chunk async for chunk in answer.aiter_bytes()]))
    assert [c["id"] for c in cdrs] == [i["invoice_number"] for i in invoices]
    empty = await api.get("/api/v1/cdrs", params={"from": "2030-01-01"})
    assert empty.json() == []
