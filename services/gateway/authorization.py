"""Id-token verdicts for Authorize, StartTransaction, StopTransaction and TransactionEvent.

Read from the registry and cached in this gateway for a short time, so a blocked card is
refused everywhere within ``ttl_s`` without a database round trip per swipe.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from psycopg_pool import AsyncConnectionPool

from ..core.db import tolerate_out_of_range_times
from ..core.text import storable

UnknownTokenPolicy = Literal["accept", "reject"]
_MAX_CACHED = 100_000


@dataclass(frozen=True)
class Verdict:
    """``status`` is an OCPP 2.x AuthorizationStatus; ``Unknown`` reads Invalid in OCPP 1.6."""

    status: Literal["Accepted", "Blocked", "Expired", "Invalid", "Unknown"]
    expires_at: datetime | None = None
    group_id: str | None = None

    @property
    def status_16(self) -> str:
        return "Invalid" if self.status == "Unknown" else self.status


@dataclass(frozen=True)
class _Row:
    status: str
    expires_at: datetime | None
    group_id: str | None


class TokenCache:
    def __init__(
        self,
        pool: AsyncConnectionPool,
        *,
        ttl_s: float,
        unknown_tokens: UnknownTokenPolicy,
        clock: Callable[[], datetime],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pool = pool
        self._ttl_s = ttl_s
        self._unknown = unknown_tokens
        self._clock = clock
        self._monotonic = monotonic
        self._cache: dict[str, tuple[float, _Row | None]] = {}

    async def verdict(self, id_token: str) -> Verdict:
        # U+0000 or a lone surrogate: PostgreSQL cannot take it, so no registered token has it.
        row = await self._row(id_token) if storable(id_token) == id_token else None
        if row is None:
            return Verdict("Accepted" if self._unknown == "accept" else "Unknown")
        status = row.status
        if status == "Accepted" and row.expires_at is not None and row.expires_at <= self._clock():
            status = "Expired"
        return Verdict(status, row.expires_at, row.group_id)  # type: ignore[arg-type]

    async def _row(self, id_token: str) -> _Row | None:
        # Case is folded by PostgreSQL alone, as the registry does: Python's lower() folds some
        # letters otherwise ("İ" to "i" and a combining dot), so the two could disagree.
        key = id_token
        now = self._monotonic()
        cached = self._cache.get(key)
        if cached is not None and now - cached[0] < self._ttl_s:
            return cached[1]
        async with self._pool.connection() as conn, conn.cursor() as cursor:
            tolerate_out_of_range_times(cursor)  # an expiry stored before it was bounded
            await cursor.execute(
                "SELECT status, expires_at, group_id FROM id_tokens"
                " WHERE lower(id_token) = lower(%s)",
                (key,),
            )
            found = await cursor.fetchone()
        row = _Row(found[0], found[1], found[2]) if found else None
        if len(self._cache) >= _MAX_CACHED:
            self._cache.clear()
        self._cache[key] = (now, row)
        return row
