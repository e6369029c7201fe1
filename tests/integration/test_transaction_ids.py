"""Transaction ids: unique across gateway processes, the same for a retransmitted request."""

from __future__ import annotations

import asyncio

from psycopg_pool import AsyncConnectionPool

from chargeledger.core import db
from chargeledger.gateway.transaction_ids import TransactionIdAllocator, request_key


async def test_unique_across_processes_and_stable_for_retransmissions(database_url: str) -> None:
    # Three "gateway processes": each has its own pool and its own leased range.
    pools: list[AsyncConnectionPool] = [await db.open_pool(database_url) for _ in range(3)]
    try:
        allocators = [TransactionIdAllocator(p, lease_size=7) for p in pools]
        requests = [(f"CP-{i % 5}", request_key(str(i), {"meterStart": i})) for i in range(60)]

        async def allocate(n: int) -> int:
            station_id, key = requests[n]
            return await allocators[n % 3].allocate(station_id, key)

        ids = await asyncio.gather(*(allocate(n) for n in range(60)))
        assert len(set(ids)) == 60
        assert all(0 < i < 2**31 for i in ids)
        # The same requests again, now through other processes: the same ids come back.
        again = await asyncio.gather(
            *(allocators[(n + 1) % 3].allocate(*requests[n]) for n in range(60))
        )
        assert again == ids
    finally:
        for p in pools:
            await p.close()


def test_request_key_tells_retransmissions_from_reused_unique_ids() -> None:
    payload = {"connectorId": 1, "idTag": "A", "meterStart": 5, "timestamp": "2026-01-01T00:00:00Z"}
    assert request_key("17", payload) == request_key("17", dict(reversed(payload.items())))
    assert request_key("17", payload) != request_key("17", {**payload, "meterStart": 6})
    assert request_key("17", payload) != request_key("18", payload)
