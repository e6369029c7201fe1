"""Presence with a lease: which gateway holds each station's connection, while it is alive.

Every gateway holds a lease in PostgreSQL (``gateway_leases``) and renews it every third of its
length; the connections it holds (``station_connections``, where commands are routed from) are
held under that lease. A gateway that stops renewing (killed, or cut off from PostgreSQL) is
dead once its lease runs out: any other gateway then appends a CLOSED event for each of its
connections, marked detected, deletes them and the lease, in one transaction that holds the
lease's row lock, so that of several gateways finding it at once exactly one does it. A gateway
restarted under the same id does the same for what its previous run left, at start.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, errors
from psycopg_pool import AsyncConnectionPool

from ..core import codec
from ..core.events import ConnectionEvent
from ..core.log import EventLog, PostgresLog, Record

# Close codes the gateway sends (RFC 6455 section 7.4: 4000-4999 are for applications; OCPP-J
# defines none), and which its CLOSED events carry.
REPLACED = 4000  # a newer connection of the station opened
LEASE_LOST = 1013  # "try again later": this gateway lost its lease
NO_CLOSE_FRAME = 1006  # the connection ended without a close frame (as RFC 6455 reports it)


class LeaseLost(RuntimeError):
    """This gateway holds no lease now, so it cannot hold connections."""


class GatewayLease:
    """One gateway's lease, and the connections it holds under it."""

    def __init__(
        self,
        pool: AsyncConnectionPool,
        log: EventLog,
        *,
        gateway_id: str,
        lease_s: float,
        clock: Callable[[], datetime],
    ) -> None:
        self._pool = pool
        self._log = log
        self.gateway_id = gateway_id
        self.lease_s = lease_s
        self._clock = clock
        self.lease_id: str | None = None
        self._renewed = 0.0  # loop time of the last renewal

    @property
    def interval_s(self) -> float:
        """How often the lease is renewed and other gateways' leases are checked."""
        return self.lease_s / 3

    @property
    def overdue(self) -> bool:
        """Whether the lease has run out since its last renewal (PostgreSQL did not answer)."""
        return asyncio.get_running_loop().time() - self._renewed > self.lease_s

    async def acquire(self) -> None:
        """Take this gateway id's lease, under a new lease id. What an earlier run with this id
        left (it was killed, or lost its lease) is closed as detected first."""
        lease_id = uuid.uuid4().hex
        async with self._pool.connection() as conn, conn.transaction():
            cursor = await conn.execute(
                "SELECT lease_id, least(expires_at, now()) FROM gateway_leases"
                " WHERE gateway_id = %s FOR UPDATE",
                (self.gateway_id,),
            )
            old = await cursor.fetchone()
            await self._close_held(
                conn,
                self.gateway_id,
                old[0] if old else None,
                old[1] if old else None,
                f"gateway {self.gateway_id} started again without having closed it",
            )
            await conn.execute(
                "DELETE FROM gateway_leases WHERE gateway_id = %s", (self.gateway_id,)
            )
            await conn.execute(
                "INSERT INTO gateway_leases (gateway_id, lease_id, acquired_at, renewed_at,"
                " expires_at) VALUES (%s, %s, now(), now(), now() + make_interval(secs => %s))",
                (self.gateway_id, lease_id, self.lease_s),
            )
        self.lease_id = lease_id
        self._renewed = asyncio.get_running_loop().time()

    async def renew(self) -> bool:
        """Extend the lease; False when it is gone: another gateway found it run out and closed
        its connections."""
        if self.lease_id is None:
            return False
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "UPDATE gateway_leases SET renewed_at = now(),"
                " expires_at = now() + make_interval(secs => %s) WHERE lease_id = %s"
                " RETURNING lease_id",
                (self.lease_s, self.lease_id),
            )
            renewed = await cursor.fetchone() is not None
        if renewed:
            self._renewed = asyncio.get_running_loop().time()
        else:
            self.lease_id = None
        return renewed

    def lose(self) -> None:
        """Give the lease up here (it ran out while PostgreSQL did not answer)."""
        self.lease_id = None

    async def release(self) -> None:
        """At a clean stop: what is still held (its close could not be recorded) is closed as
        detected, and the lease deleted."""
        if self.lease_id is None:
            return
        async with self._pool.connection() as conn, conn.transaction():
            await self._close_held(
                conn,
                self.gateway_id,
                self.lease_id,
                None,
                f"gateway {self.gateway_id} stopped without recording the close",
            )
            await conn.execute("DELETE FROM gateway_leases WHERE lease_id = %s", (self.lease_id,))
        self.lease_id = None

    async def hold(
        self,
        station_id: str,
        connection_id: str,
        ocpp_version: str,
        opened_offset: int,
        connected_at: datetime,
    ) -> None:
        """Note that this gateway holds the station's connection now (commands come here),
        unless a newer connection of the station (a later OPENED) holds it already."""
        if self.lease_id is None:
            raise LeaseLost(f"gateway {self.gateway_id} holds no lease")
        try:
            async with self._pool.connection() as conn:
                await conn.execute(
                    "INSERT INTO station_connections (station_id, connection_id, gateway_id,"
                    " ocpp_version, connected_at, lease_id, opened_offset)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT (station_id) DO UPDATE SET"
                    " connection_id = EXCLUDED.connection_id, gateway_id = EXCLUDED.gateway_id,"
                    " ocpp_version = EXCLUDED.ocpp_version, connected_at = EXCLUDED.connected_at,"
                    " lease_id = EXCLUDED.lease_id, opened_offset = EXCLUDED.opened_offset"
                    " WHERE station_connections.opened_offset IS NULL"
                    " OR station_connections.opened_offset < EXCLUDED.opened_offset",
                    (
                        station_id,
                        connection_id,
                        self.gateway_id,
                        ocpp_version,
                        connected_at,
                        self.lease_id,
                        opened_offset,
                    ),
                )
        except errors.ForeignKeyViolation:
            raise LeaseLost(f"the lease of gateway {self.gateway_id} ran out") from None

    async def drop(self, connection_id: str) -> None:
        """The connection closed (its CLOSED event follows)."""
        async with self._pool.connection() as conn:
            await conn.execute(
                "DELETE FROM station_connections WHERE connection_id = %s", (connection_id,)
            )

    async def expire_dead(self) -> int:
        """Close the connections of every other gateway whose lease ran out, and of gateways of
        earlier versions (rows without a lease) that hold none; return how many were closed."""
        closed = 0
        while True:
            async with self._pool.connection() as conn, conn.transaction():
                cursor = await conn.execute(
                    "SELECT gateway_id, lease_id, expires_at FROM gateway_leases"
                    " WHERE expires_at < now() AND gateway_id <> %s"
                    " ORDER BY expires_at LIMIT 1 FOR UPDATE SKIP LOCKED",
                    (self.gateway_id,),
                )
                dead = await cursor.fetchone()
                if dead is None:
                    break
                gateway_id, lease_id, expired_at = dead
                reason = f"the lease of gateway {gateway_id} ran out at {expired_at.isoformat()}"
                closed += await self._close_held(conn, gateway_id, lease_id, expired_at, reason)
                await conn.execute("DELETE FROM gateway_leases WHERE lease_id = %s", (lease_id,))
        async with self._pool.connection() as conn, conn.transaction():
            cursor = await conn.execute(
                "SELECT DISTINCT gateway_id FROM station_connections c WHERE lease_id IS NULL"
                " AND NOT EXISTS (SELECT 1 FROM gateway_leases l"
                " WHERE l.gateway_id = c.gateway_id)"
            )
            for (gateway_id,) in await cursor.fetchall():
                reason = f"gateway {gateway_id} holds no lease (an earlier version, or gone)"
                closed += await self._close_held(conn, gateway_id, None, None, reason)
        return closed

    async def _close_held(
        self,
        conn: AsyncConnection[Any],
        gateway_id: str,
        lease_id: str | None,
        occurred_at: datetime | None,
        reason: str,
    ) -> int:
        """Append a detected CLOSED for each connection held under the lease (and for rows of
        the gateway without a lease, written by earlier versions), then delete them, in
        ``conn``'s transaction; return how many. ``occurred_at``: when the lease ran out."""
        cursor = await conn.execute(
            "SELECT station_id, connection_id, ocpp_version FROM station_connections"
            " WHERE lease_id = %s OR (lease_id IS NULL AND gateway_id = %s) FOR UPDATE",
            (lease_id, gateway_id),
        )
        held = await cursor.fetchall()
        if not held:
            return 0
        now = self._clock()
        events = [
            ConnectionEvent(
                event_id=f"connection:{connection_id}:detected",
                station_id=station_id,
                kind="CLOSED",
                gateway_id=gateway_id,
                connection_id=connection_id,
                occurred_at=occurred_at or now,
                connection_seq=-1,
                subprotocol=ocpp_version,
                close_code=NO_CLOSE_FRAME,
                close_reason=reason,
                detected=True,
                detected_at=now,
                detected_by=self.gateway_id,
            )
            for station_id, connection_id, ocpp_version in held
        ]
        records = [Record(e.STREAM, e.key, codec.encode(e)) for e in events]
        if isinstance(self._log, PostgresLog) and self._log.shares(self._pool):
            await self._log.append_within(conn, records)  # exactly once, with the deletes
        else:
            await self._log.append(records)  # at least once: the event ids repeat
        await conn.execute(
            "DELETE FROM station_connections WHERE connection_id = ANY(%s)",
            ([connection_id for _, connection_id, _ in held],),
        )
        return len(held)
