"""A Kafka setting the cluster cannot satisfy stops `up` and `ledger` at start, in one line."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.support import REPO, free_port, postgres_pids

pytestmark = pytest.mark.kafka


def chargeledger(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARGELEDGER_")}
    return subprocess.run(
        [sys.executable, "-m", "chargeledger.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_replication_factor_the_cluster_cannot_hold_is_refused_at_start(
    data_dir: Path, kafka_bootstrap: str, database_url: str
) -> None:
    kafka = ["--log", f"kafka://{kafka_bootstrap}", "--kafka-replication-factor", "2"]
    kafka += ["--kafka-topic-prefix", f"t{uuid.uuid4().hex[:8]}."]
    refusal = (
        f"chargeledger: error: kafka_replication_factor is 2, but the Kafka cluster at"
        f" {kafka_bootstrap} has 1 broker: set --kafka-replication-factor to at most 1, or add"
        " brokers"
    )
    ports = ["--ocpp-port", str(free_port()), "--http-port", str(free_port())]
    up = chargeledger("up", "--data-dir", str(data_dir), *ports, *kafka)
    assert (up.returncode, up.stdout, up.stderr.splitlines()) == (2, "", [refusal])
    assert postgres_pids(data_dir) == []  # the embedded server it started is stopped again

    ledger = chargeledger("ledger", "--database-url", database_url, *kafka)
    assert (ledger.returncode, ledger.stderr.splitlines()) == (2, [refusal])
