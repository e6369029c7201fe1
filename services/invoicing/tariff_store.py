"""Tariffs and their assignments in PostgreSQL, the API's write model: each change is written
to its table and, in the same transaction, as its event (``config.tariffs`` /
``config.tariff-assignments``) through the outbox, so a replay of the log sees the same tariffs at
the same times. Invoicing reads them from the log, not from these tables.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from ..core.db import tolerate_out_of_range_times
from ..core.events import TariffAssignment, TariffVersion
from ..core.outbox import OutboxWriter
from .cdr_json import dumps
from .ocpi import Tariff, storable_problem
from .tariffs import Assignment, StoredTariff, TariffError, parse_tariff

_GRACE = timedelta(minutes=1)  # clock differences between the caller and this process


class TariffStore(OutboxWriter):
    producer = "tariffs"

    async def put(
        self, tariff_id: str, document: dict[str, Any], *, actor: str | None = None
    ) -> tuple[StoredTariff, bool]:
        """Store a tariff version; returns it and whether it is new (the same document again
        changes nothing)."""
        tariff = parse_tariff(document)
        problem = storable_problem(tariff)
        if problem is not None:
            raise TariffError(f"not a tariff this ledger can store: {problem}")
        if tariff.id != tariff_id:
            message = f"the document's id {tariff.id!r} is not {tariff_id!r}"
            raise TariffError(message, problems=[(("id",), message)])
        text = dumps(document)
        now = self._clock()
        # Never retroactive: a version applies from when it is stored (or its later start), so
        # sessions already priced are priced the same on any replay.
        valid_from = max(tariff.start_date_time, now) if tariff.start_date_time else now
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"tariff:{tariff_id}",)
            )
            cursor = await conn.execute(
                "SELECT revision, document FROM tariff_versions WHERE tariff_id = %s"
                " ORDER BY revision DESC LIMIT 1",
                (tariff_id,),
            )
            latest = await cursor.fetchone()
            if latest is not None and latest[1] == text:
                stored = await self.version(tariff_id, int(latest[0]), conn)
                assert stored is not None
                return stored, False
            revision = int(latest[0]) + 1 if latest else 1
            await conn.execute(
                "INSERT INTO tariff_versions (tariff_id, revision, document, valid_from,"
                " valid_to, put_at) VALUES (%s, %s, %s, %s, %s, %s)",
                (tariff_id, revision, text, valid_from, tariff.end_date_time, now),
            )
            await self._emit(
                conn,
                TariffVersion(
                    event_id=f"tariff:{tariff_id}:{revision}",
                    tariff_id=tariff_id,
                    revision=revision,
                    document=text,
                    valid_from=valid_from,
                    put_at=now,
                    valid_to=tariff.end_date_time,
                    actor=actor,
                ),
            )
        await self.publish()
        stored = await self.version(tariff_id, revision)
        assert stored is not None
        return stored, True

    async def adopt_default(self, tariff: Tariff) -> None:
        """Store the ``--tariff`` file (or the bundled sample) as a version of its tariff id,
        and make it the default where no default is assigned or where the default is the one a
        previous file set: the tariff that prices a session is then on the log, and editing the
        file changes only sessions started after. The same file again changes nothing."""
        document = tariff.model_dump(exclude_none=True)
        text = dumps(document)
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT tariff_id, document FROM tariff_file_adoptions"
                " ORDER BY adopted_at DESC LIMIT 1"
            )
            last = await cursor.fetchone()
        if last is not None and last[1] == text:
            return
        await self.put(tariff.id, document)
        defaults = [a for a in await self.assignments() if a.station_id is None]
        current = max(defaults, key=lambda a: (a.assigned_at, a.assignment_id), default=None)
        previous_file = last[0] if last is not None else None
        if current is None or (current.tariff_id == previous_file != tariff.id):
            await self.assign(tariff.id)
        async with self._pool.connection() as conn:
            await conn.execute(
                "INSERT INTO tariff_file_adoptions (adopted_at, tariff_id, document)"
                " VALUES (%s, %s, %s)",
                (self._clock(), tariff.id, text),
            )

    async def version(
        self, tariff_id: str, revision: int | None = None, conn: AsyncConnection[Any] | None = None
    ) -> StoredTariff | None:
        sql = (
            "SELECT * FROM tariff_versions WHERE tariff_id = %s"
            " AND (%s::int IS NULL OR revision = %s) ORDER BY revision DESC LIMIT 1"
        )
        rows = await self._fetch(sql, (tariff_id, revision, revision), conn)
        return _stored(rows[0]) if rows else None

    async def latest(
        self, *, after: str | None = None, limit: int | None = None
    ) -> list[StoredTariff]:
        """The newest version of each tariff, by tariff id: those after ``after``, at most
        ``limit``."""
        rows = await self._fetch(
            "SELECT DISTINCT ON (tariff_id) * FROM tariff_versions"
            " WHERE %s::text IS NULL OR tariff_id > %s"
            " ORDER BY tariff_id, revision DESC LIMIT %s",
            (after, after, limit),
        )
        return [_stored(r) for r in rows]

    async def versions(self) -> list[StoredTariff]:
        rows = await self._fetch("SELECT * FROM tariff_versions ORDER BY tariff_id, revision", ())
        return [_stored(r) for r in rows]

    async def assign(
        self,
        tariff_id: str,
        *,
        station_id: str | None = None,
        evse_id: int | None = None,
        connector_id: int | None = None,
        valid_from: datetime | None = None,
        valid_to: datetime | None = None,
        actor: str | None = None,
    ) -> Assignment:
        if connector_id is not None and station_id is None:
            raise TariffError("a connector assignment needs the station")
        now = self._clock()
        start = valid_from or now
        if start < now - _GRACE:
            raise TariffError(
                "an assignment cannot start in the past: sessions already priced would price"
                " differently on a replay; leave --from out to start now"
            )
        start = max(start, now)
        if valid_to is not None and valid_to <= start:
            raise TariffError("valid_to must be after valid_from")
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('tariff-assignments'))")
            if await self.version(tariff_id, conn=conn) is None:
                raise TariffError(f"no tariff {tariff_id!r}: put it first", 404)
            cursor = await conn.execute(
                "SELECT coalesce(max(assignment_id), 0) + 1 FROM tariff_assignments"
            )
            row = await cursor.fetchone()
            assert row is not None
            assignment = Assignment(
                int(row[0]), tariff_id, station_id, evse_id, connector_id, start, valid_to, now
            )
            await conn.execute(
                "INSERT INTO tariff_assignments (assignment_id, tariff_id, station_id, evse_id,"
                " connector_id, valid_from, valid_to, assigned_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    assignment.assignment_id,
                    tariff_id,
                    station_id,
                    evse_id,
                    connector_id,
                    start,
                    valid_to,
                    now,
                ),
            )
            await self._emit(
                conn,
                TariffAssignment(
                    event_id=f"tariff-assignment:{assignment.assignment_id}",
                    assignment_id=assignment.assignment_id,
                    tariff_id=tariff_id,
                    valid_from=start,
                    assigned_at=now,
                    station_id=station_id,
                    evse_id=evse_id,
                    connector_id=connector_id,
                    valid_to=valid_to,
                    actor=actor,
                ),
            )
        await self.publish()
        return assignment

    async def assignments(
        self, *, after: int | None = None, limit: int | None = None
    ) -> list[Assignment]:
        """Assignments by id: those after ``after``, at most ``limit``."""
        rows = await self._fetch(
            "SELECT * FROM tariff_assignments WHERE %s::int IS NULL OR assignment_id > %s"
            " ORDER BY assignment_id LIMIT %s",
            (after, after, limit),
        )
        return [Assignment(**r) for r in rows]

    async def _fetch(
        self, sql: str, params: tuple[Any, ...], conn: AsyncConnection[Any] | None = None
    ) -> list[dict[str, Any]]:
        if conn is not None:
            async with conn.cursor(row_factory=dict_row) as cur:
                tolerate_out_of_range_times(cur)
                await cur.execute(sql, params)
                return await cur.fetchall()
        async with self._pool.connection() as own, own.cursor(row_factory=dict_row) as cur:
            tolerate_out_of_range_times(cur)
            await cur.execute(sql, params)
            return await cur.fetchall()


def _stored(row: dict[str, Any]) -> StoredTariff:
    return StoredTariff(
        tariff_id=row["tariff_id"],
        revision=row["revision"],
        document=json.loads(row["document"], parse_float=Decimal),
        valid_from=row["valid_from"],
        valid_to=row["valid_to"],
        put_at=row["put_at"],
    )
