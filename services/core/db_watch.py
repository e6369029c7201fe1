"""Watching PostgreSQL while ChargeLedger runs: outages seen within a second, the embedded server
restarted, the pool failing fast while the database is away and refilled as soon as it is back."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from . import db

logger = logging.getLogger(__name__)

# A server that refuses or drops connections is down at once; one that is merely slow (a busy
# machine) only after this many probes in a row got no answer within the timeout.
SLOW_PROBES_FOR_DOWN = 3


@dataclass
class Outage:
    since: datetime
    reason: str

    def describe(self) -> str:
        return f"PostgreSQL does not answer since {self.since.isoformat()}: {self.reason}"


class DatabaseWatch:
    """Probes PostgreSQL on a connection of its own every ``interval_s``.

    A probe that fails, or three in a row that take longer than ``timeout_s``, mark the
    database down: the pool then refuses at once, and ``outage`` says why (``/healthz``,
    ``/readyz``, the gateway's handshakes). For the embedded server (``embedded_dir``), a
    server process that is gone is started again; if it cannot be for ``give_up_after_s``,
    ``run`` raises ``DatabaseError``, which stops ChargeLedger with that message. An external
    server is probed until it returns, backing off to ``max_backoff_s``. When the database
    answers again, the pool's broken connections are replaced at once.
    """

    def __init__(
        self,
        dsn: str,
        pool: db.WatchedPool,
        *,
        embedded_dir: Path | None = None,
        interval_s: float = 0.5,
        timeout_s: float = 1.0,
        max_backoff_s: float = 2.0,
        give_up_after_s: float = 60.0,
        restart: Callable[[Path], Awaitable[str]] | None = None,
    ) -> None:
        self._dsn = dsn
        self._pool = pool
        self._embedded_dir = embedded_dir
        self._interval_s = interval_s
        self._timeout_s = timeout_s
        self._max_backoff_s = max_backoff_s
        self._give_up_after_s = give_up_after_s
        self._restart = restart or _restart_embedded
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._slow = 0  # probes in a row that got no answer in time
        self._down_monotonic: float | None = None
        self.outage: Outage | None = None
        self.restarts = 0

    @property
    def problem(self) -> str | None:
        """Why the database cannot be used now, or None while it answers."""
        return self.outage.describe() if self.outage is not None else None

    async def run(self) -> None:
        backoff_s = self._interval_s
        try:
            while True:
                try:
                    async with asyncio.timeout(self._timeout_s):
                        await self._probe()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    await self._close()
                    slow = isinstance(exc, TimeoutError)
                    self._slow = self._slow + 1 if slow else 0
                    if slow and self._slow < SLOW_PROBES_FOR_DOWN and self.outage is None:
                        continue  # a busy server, not yet a dead one: ask again at once
                    self._failed(exc)
                    if self._embedded_dir is not None and await self._revive(self._embedded_dir):
                        backoff_s = self._interval_s
                        continue  # probe the new server at once
                    await asyncio.sleep(backoff_s)
                    backoff_s = min(backoff_s * 2, self._max_backoff_s)
                    continue
                backoff_s, self._slow = self._interval_s, 0
                if self.outage is not None:
                    await self._recovered()
                await asyncio.sleep(self._interval_s)
        finally:
            await self._close()

    async def _probe(self) -> None:
        if self._conn is None:
            self._conn = await psycopg.AsyncConnection.connect(
                self._dsn, autocommit=True, connect_timeout=max(1, round(self._timeout_s))
            )
        await self._conn.execute("SELECT 1")

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()

    def _failed(self, exc: BaseException) -> None:
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        if isinstance(exc, TimeoutError):
            reason = f"no answer within {self._timeout_s:g} s"
        if self.outage is None:
            self.outage = Outage(datetime.now(UTC), reason)
            self._down_monotonic = time.monotonic()
            logger.error("%s; refusing what needs it until it is back", self.outage.describe())
        else:
            self.outage.reason = reason
        self._pool.unavailable = self.outage.describe()

    async def _revive(self, data_dir: Path) -> bool:
        """Start the embedded server again if its process is gone (True once restarted); give
        up after a while."""
        if db.embedded_running(data_dir):
            return False  # it runs but does not answer (starting, overloaded): wait for it
        try:
            dsn = await self._restart(data_dir)
        except Exception as exc:
            reason = " ".join(str(exc).split())[:300]
            assert self._down_monotonic is not None
            down_s = time.monotonic() - self._down_monotonic
            logger.warning("could not restart the embedded PostgreSQL yet: %s", reason)
            if down_s >= self._give_up_after_s:
                raise db.DatabaseError(
                    f"the embedded PostgreSQL in {data_dir / 'postgres'} stopped and could not be"
                    f" started again for {down_s:.0f} s: {reason}; see"
                    f" {data_dir / 'postgres' / 'log'}"
                ) from exc
            return False
        self.restarts += 1
        logger.warning("restarted the embedded PostgreSQL in %s", data_dir / "postgres")
        if dsn != self._dsn:  # the socket moved: every new connection goes to the new one
            self._dsn = dsn
            self._pool.conninfo = dsn
        return True

    async def _recovered(self) -> None:
        assert self.outage is not None
        down_s = time.monotonic() - (self._down_monotonic or time.monotonic())
        logger.warning("PostgreSQL answers again after %.1f s", down_s)
        self.outage = None
        self._down_monotonic = None
        self._pool.unavailable = None
        # Connections opened before the outage are dead: replace them now, not one failed
        # request at a time.
        with contextlib.suppress(Exception):
            await self._pool.check()


async def _restart_embedded(data_dir: Path) -> str:
    return await asyncio.to_thread(db.start_embedded, data_dir)
