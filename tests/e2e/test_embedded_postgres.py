"""The embedded PostgreSQL lives as long as the ChargeLedger processes that use it."""

from __future__ import annotations

import signal
from pathlib import Path

from tests.support import Product, postgres_pids


def postmaster(data_dir: Path) -> int:
    return int((data_dir / "postgres" / "postmaster.pid").read_text().split()[0])


def test_a_server_left_by_a_killed_up_is_taken_over_and_stopped_at_exit(data_dir: Path) -> None:
    killed = Product(data_dir).start()
    assert killed.get("/readyz")["status"] == "ok"
    orphan = postmaster(data_dir)
    assert killed.kill(signal.SIGKILL) == -signal.SIGKILL
    assert orphan in postgres_pids(data_dir)  # nothing stopped it

    product = Product(data_dir).start()
    assert "was left running by a process that is gone" in product.output
    assert product.get("/readyz")["status"] == "ok"
    assert product.get("/api/v1/sessions") == []
    assert product.kill(signal.SIGTERM) == 0, product.output
    assert postgres_pids(data_dir) == [], product.output


def test_the_server_stays_while_another_process_sharing_the_data_dir_runs(data_dir: Path) -> None:
    killed = Product(data_dir).start()
    gateway = Product(data_dir, command="gateway").start()
    server = postmaster(data_dir)
    killed.kill(signal.SIGKILL)

    # The gateway still uses the server: the next `up` shares it rather than taking it over.
    product = Product(data_dir).start()
    assert "left running" not in product.output
    assert postmaster(data_dir) == server
    assert product.kill(signal.SIGTERM) == 0, product.output
    assert server in postgres_pids(data_dir)
    assert gateway.get("/readyz")["status"] == "ok"  # its connections were left alone

    assert gateway.kill(signal.SIGTERM) == 0, gateway.output
    assert postgres_pids(data_dir) == [], gateway.output
