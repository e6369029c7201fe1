"""Console sessions in PostgreSQL (so that they survive a restart and work on every process of
a deployment): a random id in an HttpOnly cookie, only its hash stored, and a CSRF token that
every state-changing request made with the cookie must repeat in a header."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from psycopg_pool import AsyncConnectionPool

from .credentials import token_hash
from .store import Principal

COOKIE = "chargeledger_session"
CSRF_HEADER = "x-csrf-token"


@dataclass(frozen=True)
class Session:
    principal: Principal
    csrf_token: str
    expires_at: datetime


async def open_session(
    pool: AsyncConnectionPool, user_name: str, lifetime: timedelta
) -> tuple[str, Session]:
    """A new session of the user: the id for the cookie, and the session."""
    session_id = secrets.token_urlsafe(32)
    csrf_token = secrets.token_urlsafe(32)
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "INSERT INTO console_sessions (id_hash, user_name, csrf_token, expires_at)"
            " SELECT %s, name, %s, now() + %s FROM users WHERE name = %s AND enabled"
            " RETURNING (SELECT role FROM users WHERE name = %s), expires_at",
            (token_hash(session_id), csrf_token, lifetime, user_name, user_name),
        )
        row = await cursor.fetchone()
        # Expired sessions go as new ones come.
        await conn.execute("DELETE FROM console_sessions WHERE expires_at < now()")
    if row is None:
        raise LookupError(f"no enabled user {user_name!r}")
    return session_id, Session(Principal("user", user_name, row[0]), csrf_token, row[1])


async def find_session(pool: AsyncConnectionPool, session_id: str) -> Session | None:
    """The live session of that id, if its user is still enabled."""
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT u.name, u.role, s.csrf_token, s.expires_at FROM console_sessions s"
            " JOIN users u ON u.name = s.user_name"
            " WHERE s.id_hash = %s AND s.expires_at > now() AND u.enabled",
            (token_hash(session_id),),
        )
        row = await cursor.fetchone()
    if row is None:
        return None
    return Session(Principal("user", row[0], row[1]), row[2], row[3])


async def close_session(pool: AsyncConnectionPool, session_id: str) -> None:
    async with pool.connection() as conn:
        await conn.execute(
            "DELETE FROM console_sessions WHERE id_hash = %s", (token_hash(session_id),)
        )
