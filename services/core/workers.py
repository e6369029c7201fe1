"""Worker processes of the embedded runtime: each runs every processor over its share of the
partitions (``Share``), so that the folds use every core. ``chargeledger up`` and ``replay``
start them (``bootstrap.work`` is what each runs); they run the same ``ProcessorRunner`` as a
single process does.

The parent supervises: a worker that dies is started again (after a pause that grows while it
keeps dying), and each worker reports once a second which of its processors are stuck and how
many processing errors it noted, which the parent shows on /readyz and /metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import multiprocessing.process
import queue
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.synchronize import Event as StopEvent
from typing import Any

from .log_port import Share
from .runtime import LIVE_BATCH, PROCESSING_ERRORS, ProcessorRunner
from .settings import Settings

logger = logging.getLogger(__name__)

_REPORT_EVERY_S = 1.0
_STEADY_S = 60.0  # a worker that has run this long is no longer one that keeps dying
# Forked from a server process that has imported the code once (``Workers.preload``), not from
# this one: a forked asyncio loop is unsafe, and a fresh interpreter per worker is slow to start.
_CONTEXT = multiprocessing.get_context("forkserver")


class WorkerFailed(RuntimeError):
    """A worker process ended by itself where none may (a replay); the message says which."""


@dataclass(frozen=True)
class WorkerSpec:
    """What one worker process runs (sent to it pickled)."""

    dsn: str
    settings: Settings
    share: Share
    kafka: bool = False  # follow the Kafka log of the settings, not the PostgreSQL log at dsn
    batch_size: int = LIVE_BATCH
    stop_at: dict[str, dict[int, int]] | None = None
    sequence: bool = True
    partitions: int | None = None  # of the PostgreSQL log; None: from the settings


@dataclass
class _Report:
    index: int
    stuck: str | None
    errors: dict[str, int]  # processing errors noted since the last report, by processor


def _alive(parent: multiprocessing.process.BaseProcess | None) -> bool:
    return parent is None or parent.is_alive()


# What a worker process runs: given its spec, the report queue and the stop event.
Target = Callable[[WorkerSpec, Any, StopEvent], None]


async def follow(
    runners: list[ProcessorRunner[Any]], index: int, reports: Any, stop: StopEvent
) -> None:
    """Run ``runners`` in this worker process until ``stop`` is set, reporting every second.
    The worker also ends (committing the batch in hand) on SIGTERM, and when its parent is
    gone (killed: nobody would stop it). Ctrl-C, which reaches every process of the terminal,
    is left to the parent, which stops the workers in order."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    reports.cancel_join_thread()  # exit even if the parent is gone and reads no more reports
    terminated = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, terminated.set)
    parent = multiprocessing.parent_process()  # its sentinel tells, even if it died before now
    tasks = [asyncio.create_task(r.run(), name=r.processor.name) for r in runners]
    told = {r.processor.name: 0 for r in runners}
    try:
        while not stop.is_set() and not terminated.is_set() and _alive(parent):
            for task in tasks:
                if task.done():
                    task.result()  # a runner that returned by itself failed: so does the worker
            errors = {}
            for r in runners:
                errors[r.processor.name] = r.errors_noted - told[r.processor.name]
                told[r.processor.name] = r.errors_noted
            reasons = [reason for r in runners if (reason := r.stuck()) is not None]
            reports.put(_Report(index, "; ".join(reasons) or None, errors))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_REPORT_EVERY_S):
                    await terminated.wait()
    finally:
        for r in runners:
            r.stop()
        _, hanging = await asyncio.wait(tasks, timeout=15)
        for task in hanging:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@dataclass
class Workers:
    """The worker processes of one run, one per share, supervised (see the module's text)."""

    specs: list[WorkerSpec]
    target: Target
    preload: tuple[str, ...] = ()  # modules the fork server imports once, for every worker
    restart: bool = True  # False (a replay): a worker that dies is a failure
    stuck_after_s: float = 60.0
    _processes: list[multiprocessing.process.BaseProcess] = field(default_factory=list)
    _reports: Any = field(default_factory=_CONTEXT.Queue)
    _stop: StopEvent = field(default_factory=_CONTEXT.Event)
    _heard: list[float] = field(default_factory=list)
    _stuck: list[str | None] = field(default_factory=list)
    _problem: list[str | None] = field(default_factory=list)

    def start(self) -> None:
        _CONTEXT.set_forkserver_preload(list(self.preload))
        now = time.monotonic()
        self._heard = [now] * len(self.specs)
        self._stuck = [None] * len(self.specs)
        self._problem = [None] * len(self.specs)
        self._processes = [self._spawn(i) for i in range(len(self.specs))]

    def _spawn(self, index: int) -> multiprocessing.process.BaseProcess:
        process = _CONTEXT.Process(
            target=self.target,
            args=(self.specs[index], self._reports, self._stop),
            name=f"chargeledger-worker-{index}",
            daemon=True,
        )
        process.start()
        return process

    async def run(self) -> None:
        """Supervise until ``stop``: take the reports, start again a worker that died (or,
        without ``restart``, raise)."""
        pauses = [1.0] * len(self.specs)
        dead_since: list[float | None] = [None] * len(self.specs)
        started = [time.monotonic()] * len(self.specs)
        while not self._stop.is_set():
            self._take_reports()
            now = time.monotonic()
            for i, process in enumerate(self._processes):
                if process.is_alive() and now - started[i] >= _STEADY_S:
                    pauses[i] = 1.0  # it kept running: a later death starts the pauses afresh
                if process.is_alive() or self._stop.is_set():
                    continue
                if not self.restart:
                    raise WorkerFailed(
                        f"worker process {i} of {len(self.specs)} exited with code"
                        f" {process.exitcode}; any error it printed is above"
                    )
                if dead_since[i] is None:
                    dead_since[i] = now
                    self._problem[i] = (
                        f"worker process {i} exited with code {process.exitcode}; starting it"
                        f" again in {pauses[i]:.0f} s"
                    )
                    logger.error("%s", self._problem[i])
                elif now - dead_since[i] >= pauses[i]:  # type: ignore[operator]
                    self._processes[i] = self._spawn(i)
                    self._heard[i] = started[i] = now
                    dead_since[i] = None
                    pauses[i] = min(pauses[i] * 2, 30.0)
            await asyncio.sleep(0.2)

    def _take_reports(self) -> None:
        while True:
            try:
                report: _Report = self._reports.get_nowait()
            except queue.Empty:
                return
            self._heard[report.index] = time.monotonic()
            self._stuck[report.index] = report.stuck
            self._problem[report.index] = None
            for name, count in report.errors.items():
                if count:
                    PROCESSING_ERRORS.labels(name).inc(count)

    def stuck(self) -> str | None:
        """Why the processors are not keeping up: a worker down, silent, or stuck; or None."""
        now = time.monotonic()
        for i in range(len(self.specs)):
            if self._problem[i] is not None:
                return self._problem[i]
            if now - self._heard[i] >= self.stuck_after_s:
                return f"worker process {i} has not reported for {now - self._heard[i]:.0f} s"
            if self._stuck[i] is not None:
                return self._stuck[i]
        return None

    async def stop(self) -> None:
        """Ask every worker to commit the batch in hand and exit; end those that hang."""
        self._stop.set()
        deadline = time.monotonic() + 20
        for process in self._processes:
            await asyncio.to_thread(process.join, max(0.1, deadline - time.monotonic()))
            if process.is_alive():
                process.terminate()
                await asyncio.to_thread(process.join, 5)
        with contextlib.suppress(Exception):
            self._take_reports()
