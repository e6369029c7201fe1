"""A replay that cannot be done says why in one line and leaves no database behind."""

from __future__ import annotations

import io

import psycopg
import pytest
from rich.console import Console

from chargeledger.core.settings import Settings
from chargeledger.replay import ReplayError, replay
from tests.support import free_port


async def test_a_replay_from_a_broker_that_is_not_there_fails_cleanly(
    database_url: str, postgres_server: str
) -> None:
    async def replay_databases() -> set[str]:
        async with await psycopg.AsyncConnection.connect(postgres_server) as conn:
            rows = await (
                await conn.execute(
                    "SELECT datname FROM pg_database WHERE datname LIKE 'chargeledger_replay_%%'"
                )
            ).fetchall()
        return {row[0] for row in rows}

    before = await replay_databases()  # other tests may keep theirs
    settings = Settings(database_url=database_url, log=f"kafka://127.0.0.1:{free_port()}")
    with pytest.raises(ReplayError, match="check that the broker is running"):
        await replay(settings, verify=True, keep=False, console=Console(file=io.StringIO()))
    assert await replay_databases() == before
