"""`chargeledger up` runs the processors in worker processes, each on its share of the
partitions: every station's sessions are processed, a worker that dies is started again (and
/readyz says so meanwhile), and no worker outlives a killed `up`."""

from __future__ import annotations

import asyncio
import signal
import time
from functools import partial
from pathlib import Path

import httpx
import psutil

from chargeledger.core.log_port import Share, partition_for
from tests.e2e.test_replay import charge
from tests.support import Product, eventually

WORKERS = 2
PARTITIONS = 8  # the default


def workers_of(product: Product) -> list[psutil.Process]:
    """The worker processes: forked by `up`'s fork server, its child."""
    assert product.process is not None
    servers = [
        child
        for child in psutil.Process(product.process.pid).children()
        if "forkserver" in " ".join(child.cmdline())
    ]
    return [worker for server in servers for worker in server.children()]


def stations_of_share(index: int) -> list[str]:
    """Station ids whose partitions belong to worker ``index``."""
    share = Share(index, WORKERS)
    return [f"WK-{n}" for n in range(40) if share.takes(partition_for(f"WK-{n}", PARTITIONS))]


def completed(product: Product, station: str) -> list[dict[str, object]]:
    return [
        s for s in product.get("/api/v1/sessions", station_id=station) if s["status"] == "completed"
    ]


async def test_the_processors_run_in_worker_processes_that_are_started_again(
    data_dir: Path,  # its embedded PostgreSQL, which outlives the SIGKILL, is stopped after
) -> None:
    product = Product(data_dir, env={"CHARGELEDGER_PROCESSOR_WORKERS": str(WORKERS)}).start()
    product.follow_output()
    try:

        def all_started() -> list[psutil.Process] | None:
            found = workers_of(product)
            return found if len(found) == WORKERS else None

        workers = await asyncio.to_thread(eventually, all_started, 20, "the workers")
        stations = [stations_of_share(i)[0] for i in range(WORKERS)]
        for n, station in enumerate(stations):
            await charge(product, station, 1000 + n, repeat_start=False)
        for station in stations:  # each processed by its own worker
            [session] = await asyncio.to_thread(
                eventually, partial(completed, product, station), 30, f"{station} processed"
            )
            assert session["energy_wh"] == 7000

        victim = workers[1]
        victim.kill()

        def not_ready() -> httpx.Response | None:
            answer = httpx.get(product.api + "/readyz", timeout=5)
            return answer if answer.status_code == 503 else None

        readiness = await asyncio.to_thread(eventually, not_ready, 10, "the dead worker")
        assert "worker process 1 exited" in readiness.text
        await asyncio.to_thread(
            eventually,
            lambda: httpx.get(product.api + "/readyz", timeout=5).status_code == 200,
            30,
            "ready again",
        )
        assert victim.pid not in {w.pid for w in workers_of(product)}
        assert len(workers_of(product)) == WORKERS

        # The new worker 1 takes its share: a session there is processed again.
        later = stations_of_share(1)[1]
        await charge(product, later, 3000, repeat_start=False)
        await asyncio.to_thread(
            eventually, lambda: completed(product, later), 30, "the session after the restart"
        )
        survivors = workers_of(product)
        survivors += {p for w in survivors if (p := w.parent()) is not None}  # the fork server
    finally:
        product.kill(signal.SIGKILL)
    # Killed outright, `up` could not stop its workers: they see it gone and end by themselves.
    deadline = time.monotonic() + 15
    while any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in survivors):
        assert time.monotonic() < deadline, "a worker outlived its parent"
        await asyncio.sleep(0.2)
