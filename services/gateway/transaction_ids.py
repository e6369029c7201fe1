"""Transaction ids, unique across every gateway process, idempotent per StartTransaction request.

Each process leases a range of ids from PostgreSQL (one row update per range) and hands them out
locally. The id given to a request is recorded under (station id, request key), where the request
key is the OCPP unique id plus a hash of the payload: a retransmitted CALL gets the same id back,
while a new request that happens to reuse an old unique id (stations reset their counters) does not.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

from psycopg_pool import AsyncConnectionPool

OCPP16_MAX_TRANSACTION_ID = 2**31 - 1  # transactionId is a JSON integer, 32-bit in practice


def request_key(unique_id: str, payload: dict[str, Any]) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    # surrogatepass: a lone surrogate (JSON "\ud800") has no UTF-8 of its own.
    digest = hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{unique_id}:{digest[:32]}"


class TransactionIdAllocator:
    def __init__(self, pool: AsyncConnectionPool, *, lease_size: int = 100) -> None:
        self._pool = pool
        self._lease_size = lease_size
        self._next = 0
        self._end = 0
        self._lock = asyncio.Lock()

    async def _take(self) -> int:
        async with self._lock:
            if self._next >= self._end:
                async with self._pool.connection() as conn:
                    cursor = await conn.execute(
                        "UPDATE id_leases SET next_value = next_value + %s"
                        " WHERE name = 'transaction_id' RETURNING next_value",
                        (self._lease_size,),
                    )
                    row = await cursor.fetchone()
                assert row is not None, "migration 002 creates the transaction_id lease row"
                self._end = int(row[0])
                self._next = self._end - self._lease_size
            if self._next > OCPP16_MAX_TRANSACTION_ID:
                raise RuntimeError("transaction ids are exhausted (over 2^31 - 1)")
            value = self._next
            self._next += 1
            return value

    async def allocate(self, station_id: str, key: str) -> int:
        """The transaction id for this request: a new one, or the one it was given before."""
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT transaction_id FROM transaction_ids"
                " WHERE station_id = %s AND request_key = %s",
                (station_id, key),
            )
            row = await cursor.fetchone()
            if row is not None:
                return int(row[0])
        candidate = await self._take()
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "INSERT INTO transaction_ids (station_id, request_key, transaction_id)"
                " VALUES (%s, %s, %s) ON CONFLICT (station_id, request_key) DO NOTHING"
                " RETURNING transaction_id",
                (station_id, key, candidate),
            )
            row = await cursor.fetchone()
            if row is None:  # another gateway answered the same retransmission first
                cursor = await conn.execute(
                    "SELECT transaction_id FROM transaction_ids"
                    " WHERE station_id = %s AND request_key = %s",
                    (station_id, key),
                )
                row = await cursor.fetchone()
            assert row is not None
            return int(row[0])
