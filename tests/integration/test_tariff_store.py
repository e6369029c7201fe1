"""Tariff versions and assignments: stored, and every change an event on the log."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from psycopg_pool import AsyncConnectionPool

from chargeledger.core import codec
from chargeledger.core.events import (
    TARIFF_ASSIGNMENTS,
    TARIFFS,
    Event,
    TariffAssignment,
    TariffVersion,
)
from chargeledger.core.log import PostgresLog
from chargeledger.invoicing.ocpi import Tariff
from chargeledger.invoicing.tariff_store import TariffStore
from chargeledger.invoicing.tariffs import TariffError

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@pytest.fixture
async def log(pool: AsyncConnectionPool) -> AsyncIterator[PostgresLog]:
    log = PostgresLog(pool, partitions=4)
    await log.start()
    yield log
    await log.close()


def document(price: str = "0.39") -> dict[str, object]:
    parsed: dict[str, object] = json.loads(
        '{"country_code": "DE", "party_id": "CLG", "id": "T1", "currency": "EUR",'
        ' "elements": [{"price_components": [{"type": "ENERGY", "price": ' + price + ","
        ' "vat": 19, "step_size": 1}]}], "last_updated": "2026-11-01T00:00:00Z"}',
        parse_float=Decimal,
    )
    return parsed


async def events(log: PostgresLog, stream: str) -> list[Event]:
    out: list[Event] = []
    for partition in range(await log.partitions(stream)):
        out += [codec.decode(e.value) for e in await log.read(stream, partition, 0, 100)]
    return out


async def test_versions_and_assignments_are_logged(
    pool: AsyncConnectionPool, log: PostgresLog
) -> None:
    store = TariffStore(pool, log, lambda: NOW)
    first, new = await store.put("T1", document())
    assert (first.revision, new) == (1, True)
    assert (await store.put("T1", document()))[1] is False  # the same again: no new version
    second, _ = await store.put("T1", document("0.4200"))
    assert second.revision == 2 and second.document["elements"][0]["price_components"][0][
        "price"
    ] == Decimal("0.4200")
    await store.assign("T1", station_id="CP-1")

    versions = await events(log, TARIFFS)
    assert [(v.revision, v.event_id) for v in versions if isinstance(v, TariffVersion)] == [
        (1, "tariff:T1:1"),
        (2, "tariff:T1:2"),
    ]
    last = versions[-1]
    assert isinstance(last, TariffVersion)
    assert '"price": 0.4200' in last.document
    [assigned] = await events(log, TARIFF_ASSIGNMENTS)
    assert isinstance(assigned, TariffAssignment)
    assert (assigned.tariff_id, assigned.station_id, assigned.valid_from) == ("T1", "CP-1", NOW)


async def test_bad_tariffs_and_assignments_are_refused(
    pool: AsyncConnectionPool, log: PostgresLog
) -> None:
    store = TariffStore(pool, log, lambda: NOW)
    with pytest.raises(TariffError, match="is not 'T2'"):
        await store.put("T2", document())
    broken = document()
    broken["currency"] = "euro"
    with pytest.raises(TariffError, match="currency"):
        await store.put("T1", broken)
    with pytest.raises(TariffError, match="no tariff 'T9'") as refused:
        await store.assign("T9")
    assert refused.value.status == 404
    assert await events(log, TARIFFS) == []


async def test_the_tariff_file_is_adopted_once_and_takes_over_only_its_own_default(
    pool: AsyncConnectionPool, log: PostgresLog
) -> None:
    clock = [NOW]
    store = TariffStore(pool, log, lambda: clock[0])

    async def defaults() -> list[str]:
        return [a.tariff_id for a in await store.assignments() if a.station_id is None]

    sample = Tariff.model_validate(document())
    await store.adopt_default(sample)
    await store.adopt_default(sample)  # a restart with the same file: nothing new
    assert await defaults() == ["T1"]
    assert [v.revision for v in await store.versions()] == [1]

    clock[0] = NOW + timedelta(hours=1)
    await store.put("T1", document("0.50"))  # changed through the API: kept on restart
    await store.adopt_default(sample)
    assert [v.revision for v in await store.versions()] == [1, 2]

    other = Tariff.model_validate({**document(), "id": "T2"})
    clock[0] = NOW + timedelta(hours=2)
    await store.adopt_default(other)  # a file with another tariff: it takes over the default
    assert await defaults() == ["T1", "T2"]

    await store.put("T3", {**document(), "id": "T3"})
    await store.assign("T3")  # an operator's default through the API ...
    clock[0] = NOW + timedelta(hours=3)
    await store.adopt_default(Tariff.model_validate({**document("0.45"), "id": "T2"}))
    assert await defaults() == ["T1", "T2", "T3"]  # ... is not overridden by a file
