"""The station and id-token registries in PostgreSQL.

Every change writes the registry row and its event (``config.stations`` / ``config.tokens``)
into the outbox in one transaction, then publishes the outbox: the log holds every registration
as it was, while gateways read the current rows.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal, get_args

from psycopg.errors import UniqueViolation
from psycopg.rows import dict_row

from ..core.bounds import text_problem, time_problem
from ..core.db import tolerate_out_of_range_times
from ..core.events import StationRegistration, TokenRegistration
from ..core.ids import STATION_ID_RULE, is_station_id
from ..core.outbox import OutboxWriter
from . import passwords

TokenStatus = Literal["Accepted", "Blocked", "Expired", "Invalid"]
TOKEN_STATUSES: tuple[str, ...] = get_args(TokenStatus)
# idTag (1.6) is 20 characters, idToken (2.x) 36 (2.0.1) or 255 (2.1): printable, no spaces,
# and none of / ? # % so that a token is one segment of a URL path as it is.
ID_TOKEN = re.compile(r"[\x21\x22\x24\x26-\x2e\x30-\x3e\x40-\x7e]{1,255}")
# parentIdTag (1.6) is at most 20 characters: a longer group could not be answered in 1.6.
MAX_GROUP_ID = 20


class RegistryError(ValueError):
    """A registry request that cannot be done; ``status`` is the HTTP status that says why."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Station:
    station_id: str
    enabled: bool
    has_password: bool
    revision: int
    created_at: datetime
    updated_at: datetime
    password_hash: str | None = None  # never shown by the API


@dataclass(frozen=True)
class IdToken:
    id_token: str
    status: TokenStatus
    token_type: str | None
    expires_at: datetime | None
    group_id: str | None
    account_id: str | None
    revision: int
    updated_at: datetime


def check_station_id(station_id: str) -> None:
    if not is_station_id(station_id):
        raise RegistryError(f"station id {station_id!r} is not {STATION_ID_RULE}")


def _station(row: dict[str, Any]) -> Station:
    return Station(
        station_id=row["station_id"],
        enabled=row["enabled"],
        has_password=row["password_hash"] is not None,
        revision=row["revision"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        password_hash=row["password_hash"],
    )


def _token(row: dict[str, Any]) -> IdToken:
    return IdToken(**{k: row[k] for k in IdToken.__dataclass_fields__})


class Registry(OutboxWriter):
    producer = "registry"

    async def _fetch(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            tolerate_out_of_range_times(cur)
            await cur.execute(sql, params)
            return await cur.fetchall()

    # Stations

    async def add_station(
        self,
        station_id: str,
        *,
        password: str | None = None,
        enabled: bool = True,
        actor: str | None = None,
    ) -> Station:
        check_station_id(station_id)
        password_hash = await _hash(password)
        now = self._clock()
        try:
            async with self._pool.connection() as conn, conn.transaction():
                await conn.execute(
                    "INSERT INTO stations (station_id, password_hash, enabled, revision,"
                    " created_at, updated_at) VALUES (%s, %s, %s, 1, %s, %s)",
                    (station_id, password_hash, enabled, now, now),
                )
                event = _station_event(station_id, 1, enabled, password_hash, now)
                await self._emit(conn, replace(event, actor=actor))
        except UniqueViolation:
            raise RegistryError(f"station {station_id!r} is already registered", 409) from None
        await self.publish()
        return await self._must_station(station_id)

    async def update_station(
        self,
        station_id: str,
        *,
        enabled: bool | None = None,
        password: str | None = None,
        remove_password: bool = False,
        actor: str | None = None,
    ) -> Station:
        if password is not None and remove_password:
            raise RegistryError("give a new password or remove it, not both")
        password_hash = await _hash(password)
        now = self._clock()
        async with self._pool.connection() as conn, conn.transaction():
            cursor = await conn.execute(
                "UPDATE stations SET enabled = coalesce(%s, enabled),"
                " password_hash = CASE WHEN %s THEN NULL ELSE coalesce(%s, password_hash) END,"
                " revision = revision + 1, updated_at = %s WHERE station_id = %s"
                " RETURNING revision, enabled, password_hash",
                (enabled, remove_password, password_hash, now, station_id),
            )
            row = await cursor.fetchone()
            if row is None:
                raise RegistryError(f"no station {station_id!r}; add it first", 404)
            revision, now_enabled, stored_hash = row
            event = _station_event(
                station_id,
                revision,
                now_enabled,
                stored_hash,
                now,
                password_changed=password is not None or remove_password,
            )
            await self._emit(conn, replace(event, actor=actor))
        await self.publish()
        return await self._must_station(station_id)

    async def station(self, station_id: str) -> Station | None:
        rows = await self._fetch("SELECT * FROM stations WHERE station_id = %s", station_id)
        return _station(rows[0]) if rows else None

    async def _must_station(self, station_id: str) -> Station:
        found = await self.station(station_id)
        if found is None:
            raise RegistryError(f"no station {station_id!r}", 404)
        return found

    async def stations(self, *, limit: int = 1000, after: str = "") -> list[Station]:
        rows = await self._fetch(
            "SELECT * FROM stations WHERE station_id > %s ORDER BY station_id LIMIT %s",
            after,
            limit,
        )
        return [_station(r) for r in rows]

    # Id tokens

    async def add_token(
        self,
        id_token: str,
        *,
        status: str = "Accepted",
        token_type: str | None = None,
        expires_at: datetime | None = None,
        group_id: str | None = None,
        account_id: str | None = None,
        actor: str | None = None,
    ) -> IdToken:
        _check_token(id_token, status, expires_at, group_id)
        _check_text(token_type=token_type, account_id=account_id)
        now = self._clock()
        values = (id_token, token_type, status, expires_at, group_id, account_id)
        try:
            async with self._pool.connection() as conn, conn.transaction():
                await conn.execute(
                    "INSERT INTO id_tokens (id_token, token_type, status, expires_at, group_id,"
                    " account_id, revision, updated_at) VALUES (%s, %s, %s, %s, %s, %s, 1, %s)",
                    (*values, now),
                )
                await self._emit(conn, replace(_token_event(1, now, *values), actor=actor))
        except UniqueViolation:
            raise RegistryError(f"id token {id_token!r} is already registered", 409) from None
        await self.publish()
        return await self._must_token(id_token)

    async def update_token(
        self, id_token: str, *, actor: str | None = None, **changes: Any
    ) -> IdToken:
        """Change the given fields (status, token_type, expires_at, group_id, account_id);
        a field given as None is cleared."""
        allowed = {"status", "token_type", "expires_at", "group_id", "account_id"}
        if unknown := set(changes) - allowed:
            raise RegistryError(f"cannot change {', '.join(sorted(unknown))} of an id token")
        _check_text(**{k: v for k, v in changes.items() if k in ("token_type", "account_id")})
        if changes.get("expires_at") is not None:
            _check_expiry(changes["expires_at"])
        now = self._clock()
        async with self._pool.connection() as conn, conn.transaction():
            async with conn.cursor(row_factory=dict_row) as cur:
                tolerate_out_of_range_times(cur)
                await cur.execute(
                    "SELECT * FROM id_tokens WHERE lower(id_token) = lower(%s) FOR UPDATE",
                    (id_token,),
                )
                row = await cur.fetchone()
            if row is None:
                raise RegistryError(f"no id token {id_token!r}; add it first", 404)
            row.update(changes)
            # The expiry was checked above if it changes: a stored one is kept as it reads.
            _check_token(row["id_token"], row["status"], None, row["group_id"])
            revision = row["revision"] + 1
            await conn.execute(
                "UPDATE id_tokens SET token_type = %s, status = %s, expires_at = %s,"
                " group_id = %s, account_id = %s, revision = %s, updated_at = %s"
                " WHERE id_token = %s",
                (
                    row["token_type"],
                    row["status"],
                    row["expires_at"],
                    row["group_id"],
                    row["account_id"],
                    revision,
                    now,
                    row["id_token"],
                ),
            )
            await self._emit(
                conn,
                replace(
                    _token_event(
                        revision,
                        now,
                        row["id_token"],
                        row["token_type"],
                        row["status"],
                        row["expires_at"],
                        row["group_id"],
                        row["account_id"],
                    ),
                    actor=actor,
                ),
            )
        await self.publish()
        return await self._must_token(row["id_token"])

    async def token(self, id_token: str) -> IdToken | None:
        rows = await self._fetch(
            "SELECT * FROM id_tokens WHERE lower(id_token) = lower(%s)", id_token
        )
        return _token(rows[0]) if rows else None

    async def _must_token(self, id_token: str) -> IdToken:
        found = await self.token(id_token)
        if found is None:
            raise RegistryError(f"no id token {id_token!r}", 404)
        return found

    async def tokens(self, *, limit: int = 1000, after: str = "") -> list[IdToken]:
        rows = await self._fetch(
            "SELECT * FROM id_tokens WHERE id_token > %s ORDER BY id_token LIMIT %s", after, limit
        )
        return [_token(r) for r in rows]


async def _hash(password: str | None) -> str | None:
    if password is None:
        return None
    try:
        passwords.check(password)
    except passwords.PasswordError as exc:
        raise RegistryError(str(exc)) from None
    # scrypt takes tens of milliseconds: off the event loop.
    return await asyncio.to_thread(passwords.hash_password, password)


def _check_token(
    id_token: str, status: str, expires_at: datetime | None, group_id: str | None = None
) -> None:
    if not ID_TOKEN.fullmatch(id_token):
        raise RegistryError(
            f"id token {id_token!r} is not 1-255 printable ASCII characters without / ? # %"
        )
    if group_id is not None and not (
        ID_TOKEN.fullmatch(group_id) and len(group_id) <= MAX_GROUP_ID
    ):
        raise RegistryError(
            f"group id {group_id!r} is not 1-{MAX_GROUP_ID} printable ASCII characters"
            " without / ? # % (OCPP 1.6 parentIdTag is at most 20)"
        )
    if status not in TOKEN_STATUSES:
        raise RegistryError(f"status {status!r} is not one of {', '.join(TOKEN_STATUSES)}")
    if expires_at is not None:
        _check_expiry(expires_at)


def _check_expiry(expires_at: datetime) -> None:
    problem = time_problem(expires_at)
    if problem is not None:
        raise RegistryError(f"expires_at {problem}")


def _check_text(**fields: str | None) -> None:
    for name, value in fields.items():
        problem = text_problem(value) if value is not None else None
        if problem is not None:
            raise RegistryError(f"{name} {problem}")


def _station_event(
    station_id: str,
    revision: int,
    enabled: bool,
    password_hash: str | None,
    at: datetime,
    *,
    password_changed: bool | None = None,
) -> StationRegistration:
    return StationRegistration(
        event_id=f"station:{station_id}:{revision}",
        station_id=station_id,
        revision=revision,
        enabled=enabled,
        has_password=password_hash is not None,
        password_changed=password_hash is not None
        if password_changed is None
        else password_changed,
        changed_at=at,
    )


def _token_event(
    revision: int,
    at: datetime,
    id_token: str,
    token_type: str | None,
    status: str,
    expires_at: datetime | None,
    group_id: str | None,
    account_id: str | None,
) -> TokenRegistration:
    return TokenRegistration(
        event_id=f"token:{id_token}:{revision}",
        id_token=id_token,
        revision=revision,
        status=status,
        changed_at=at,
        token_type=token_type,
        expires_at=expires_at,
        group_id=group_id,
        account_id=account_id,
    )
