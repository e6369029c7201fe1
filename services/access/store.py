"""Users and API tokens in PostgreSQL: written by the ``users`` and ``api-tokens`` commands
(directly on the database, so the first admin can be made before anything runs), read by the
HTTP API. Secrets only as hashes; none of this is on the event log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from . import credentials
from .roles import check_role


class AccessError(ValueError):
    """A user or token that cannot be made or changed as asked; the message says why."""


@dataclass(frozen=True)
class Principal:
    """Who a request comes from: a user or an API token, with its role."""

    kind: str  # "user" or "token"
    name: str
    role: str

    @property
    def actor(self) -> str:
        return f"{self.kind}:{self.name}"


USER_COLUMNS = "name, role, enabled, created_at, updated_at"
TOKEN_COLUMNS = "name, role, expires_at, created_at, revoked_at"


def _one(conn: psycopg.Connection[Any], sql: str, *params: Any) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def add_user(conn: psycopg.Connection[Any], name: str, role: str, password: str) -> dict[str, Any]:
    credentials.check_name(name)
    check_role(role)
    password_hash = credentials.hash_password(password)
    try:
        row = _one(
            conn,
            f"INSERT INTO users (name, role, password_hash) VALUES (%s, %s, %s)"
            f" RETURNING {USER_COLUMNS}",
            name,
            role,
            password_hash,
        )
    except psycopg.errors.UniqueViolation as exc:
        raise AccessError(f"there is already a user {name!r}") from exc
    assert row is not None
    return row


def list_users(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cursor:
        cursor.execute(f"SELECT {USER_COLUMNS} FROM users ORDER BY name")
        return cursor.fetchall()


def change_user(conn: psycopg.Connection[Any], name: str, **changes: Any) -> dict[str, Any]:
    """Set ``enabled``, ``role`` or ``password`` of a user."""
    values: dict[str, Any] = {}
    if "role" in changes:
        values["role"] = check_role(changes["role"])
    if "enabled" in changes:
        values["enabled"] = bool(changes["enabled"])
    if "password" in changes:
        values["password_hash"] = credentials.hash_password(changes["password"])
    assignments = ", ".join(f"{column} = %s" for column in values)
    row = _one(
        conn,
        f"UPDATE users SET {assignments}, updated_at = now() WHERE name = %s"
        f" RETURNING {USER_COLUMNS}",
        *values.values(),
        name,
    )
    if row is None:
        raise AccessError(f"there is no user {name!r}")
    return row


def has_users(conn: psycopg.Connection[Any]) -> bool:
    return _one(conn, "SELECT 1 AS found FROM users WHERE enabled LIMIT 1") is not None


def create_token(
    conn: psycopg.Connection[Any], name: str, role: str, expires_at: datetime | None
) -> tuple[dict[str, Any], str]:
    """A new API token: its row, and the token itself (shown once, never stored)."""
    credentials.check_name(name)
    check_role(role)
    if expires_at is not None and expires_at <= datetime.now(UTC):
        raise AccessError(f"the expiry {expires_at.isoformat()} has passed")
    token = credentials.new_token()
    try:
        row = _one(
            conn,
            f"INSERT INTO api_tokens (name, role, token_hash, expires_at) VALUES (%s, %s, %s, %s)"
            f" RETURNING {TOKEN_COLUMNS}",
            name,
            role,
            credentials.token_hash(token),
            expires_at,
        )
    except psycopg.errors.UniqueViolation as exc:
        raise AccessError(f"there is already an API token named {name!r}") from exc
    assert row is not None
    return row, token


def list_tokens(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cursor:
        cursor.execute(f"SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY name")
        return cursor.fetchall()


def revoke_token(conn: psycopg.Connection[Any], name: str) -> dict[str, Any]:
    row = _one(
        conn,
        f"UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE name = %s"
        f" RETURNING {TOKEN_COLUMNS}",
        name,
    )
    if row is None:
        raise AccessError(f"there is no API token named {name!r}")
    return row


async def token_principal(pool: AsyncConnectionPool, token: str) -> Principal | None:
    """The API token's principal, if the token is valid now (known, not revoked, not expired)."""
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT name, role FROM api_tokens WHERE token_hash = %s AND revoked_at IS NULL"
            " AND (expires_at IS NULL OR expires_at > now())",
            (credentials.token_hash(token),),
        )
        row = await cursor.fetchone()
    return Principal("token", row[0], row[1]) if row else None


async def user_password_hash(pool: AsyncConnectionPool, name: str) -> tuple[str, str] | None:
    """(role, password hash) of an enabled user."""
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT role, password_hash FROM users WHERE name = %s AND enabled", (name,)
        )
        row = await cursor.fetchone()
    return (row[0], row[1]) if row else None


async def user_role(pool: AsyncConnectionPool, name: str) -> str | None:
    """The role of an enabled user (for a session: disabling a user ends its sessions)."""
    found = await user_password_hash(pool, name)
    return found[0] if found else None
