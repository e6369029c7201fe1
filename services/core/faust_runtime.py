"""The scaled runtime: the same pure processors as faust-streaming agents over Kafka.

One faust app (one consumer group) holds an agent per input stream, which hands each batch to
every processor of that stream (three follow the frames), so faust dispatches each message
once; Kafka spreads the partitions over however many workers run. Delivery is at-least-once
(faust's ``exactly_once`` mode has long-standing open bugs): each batch goes through
``ProcessorRunner.process``, which writes state, projection rows, outputs and the processed
offsets in ONE PostgreSQL transaction. Faust commits its Kafka offsets only after that (an agent
acks its events once every processor of the stream has processed their batch), and the runner
leaves out the entries below the offsets PostgreSQL holds, so a batch redelivered after a crash
changes nothing.

Batches grow while an agent is behind, as on the embedded runtime. An agent reads events into a
backlog while its previous batch is processed. Caught up, it takes up to ``batch_size`` events,
once the oldest has waited ``WINDOW_S``. When Kafka still holds ``batch_size`` entries or more
beyond a batch, the next takes up to ``max_batch_size`` and waits for them up to
``BEHIND_WINDOW_S``: reading shares the worker's core with processing, so a batch that ends after
a fixed short time stays small, and with a thousand stations batches of a few hundred wrote each
station's state and session revision for nearly every frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faust
from faust.streams import Stream
from faust.types import EventT
from psycopg_pool import AsyncConnectionPool

from . import db
from .log import Entry, KafkaLog, KafkaTopics, Position
from .processor import Processor
from .runtime import BEHIND_BATCH, LIVE_BATCH, ProcessorRunner, Sink

logger = logging.getLogger(__name__)

APP_ID = "chargeledger-ledger"  # the consumer group, after the topic prefix
WINDOW_S = 0.2  # caught up: how long the oldest event read waits for others
BEHIND_WINDOW_S = 2.0  # behind: how long a batch waits to fill


class _Backlog:
    """The events an agent has read and not yet processed, oldest first."""

    def __init__(self, limit: int) -> None:
        self._events: list[EventT[bytes]] = []
        self._oldest_at = 0.0  # loop time
        self._wanted = 0  # how many the waiting ``take`` needs: it is woken at that many only
        self._added = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._limit = limit

    async def add(self, event: EventT[bytes]) -> None:
        """Add ``event``; wait while the backlog is at its limit (faust then stops fetching)."""
        if not self._events:
            self._oldest_at = asyncio.get_running_loop().time()
        self._events.append(event)
        if len(self._events) >= self._wanted:
            self._added.set()
        if len(self._events) >= self._limit:
            self._room.clear()
            await self._room.wait()

    async def take(
        self, size: int, window_s: float, *, from_now: bool = False
    ) -> list[EventT[bytes]]:
        """The oldest ``size`` events, as soon as there are that many, or fewer (at least one)
        once the oldest has waited ``window_s`` (or ``window_s`` from now)."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        while len(self._events) < size:
            since = start if from_now else self._oldest_at
            left = since + window_s - loop.time() if self._events else None
            if left is not None and left <= 0:
                break
            # Woken by the first event (the window starts) or once there are ``size``.
            self._wanted = size if self._events else 1
            self._added.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self._added.wait()
        self._wanted = 0
        taken, self._events = self._events[:size], self._events[size:]
        self._oldest_at = loop.time()  # those left wait at most one more window
        self._room.set()
        return taken


@dataclass
class _Connections:
    pool: AsyncConnectionPool
    log: KafkaLog


class FaustLedger:
    """Builds the faust app; the PostgreSQL pool and Kafka producer open in the worker's loop."""

    def __init__(
        self,
        *,
        bootstrap: str,
        database_url: str,
        partitions: int,
        processors: Sequence[tuple[Processor[Any], Sink | None]],
        batch_size: int = LIVE_BATCH,
        max_batch_size: int = BEHIND_BATCH,
        app_id: str = APP_ID,
        session_timeout_s: float = 60.0,
        topic_prefix: str = "",
        replication_factor: int = 1,
        min_insync_replicas: int | None = None,
        datadir: Path | None = None,
    ) -> None:
        self._bootstrap = bootstrap
        self._database_url = database_url
        self._topics = KafkaTopics(
            partitions, replication_factor, min_insync_replicas, topic_prefix
        )
        self._batch_size = batch_size
        self._max_batch_size = max(batch_size, max_batch_size)
        self._connections: _Connections | None = None
        self._opening = asyncio.Lock()
        self._runners: dict[str, ProcessorRunner[Any]] = {}
        # faust makes its directories there even with tables in memory (and else in the
        # working directory); one of its own goes when the worker stops.
        self._own_datadir = datadir is None
        if datadir is None:
            datadir = Path(tempfile.mkdtemp(prefix="chargeledger-faust-"))
        datadir.mkdir(parents=True, exist_ok=True)
        self.datadir = datadir
        self.app = faust.App(
            self._topics.group(app_id),
            broker=f"kafka://{bootstrap}",
            processing_guarantee="at_least_once",
            consumer_auto_offset_reset="earliest",
            topic_partitions=partitions,
            topic_replication_factor=replication_factor,
            topic_allow_declare=False,  # the streams exist (KafkaLog.ensure_topics)
            store="memory://",
            datadir=str(datadir),
            web_enabled=False,
            autodiscover=False,
            # How long a worker that died without leaving holds its partitions.
            broker_session_timeout=session_timeout_s,
            broker_heartbeat_interval=min(3.0, session_timeout_s / 3),
            # On a rebalance faust would wait for the events in the agents' hands, which can
            # hang for good (faust-streaming/faust#133; seen here at 1M frames with one worker).
            # No need: the offsets are those committed in PostgreSQL with the rows, and a
            # partition's new owner claims it (ProcessorRunner._claim) before it folds.
            stream_wait_empty=False,
        )
        by_stream: dict[str, list[tuple[Processor[Any], Sink | None]]] = {}
        for processor, sink in processors:
            by_stream.setdefault(processor.input_stream, []).append((processor, sink))
        self._followers = {stream: len(members) for stream, members in by_stream.items()}
        for stream, members in by_stream.items():
            self._add_agent(stream, members)

    async def _open(self) -> _Connections:
        async with self._opening:
            if self._connections is None:
                pool = await db.open_pool(self._database_url)
                t = self._topics
                log = KafkaLog(
                    self._bootstrap,
                    partitions=t.partitions,
                    replication_factor=t.replication_factor,
                    min_insync_replicas=t.min_insync_replicas,
                    topic_prefix=t.prefix,
                )
                await log.start()
                self._connections = _Connections(pool, log)
            return self._connections

    def _add_agent(
        self, stream_name: str, members: list[tuple[Processor[Any], Sink | None]]
    ) -> None:
        topic = self.app.topic(
            self._topics.topic(stream_name),
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
        )

        async def agent(stream: faust.StreamT[bytes]) -> None:
            assert isinstance(stream, Stream)  # noack is not on the StreamT interface
            manual = stream.noack()  # acked in _batches, once processed
            backlog = _Backlog(2 * self._max_batch_size)
            batches = asyncio.ensure_future(self._batches(members, manual, backlog))
            try:
                async for event in manual.events():
                    if batches.done():  # it only ends by raising: let the agent crash with it
                        batches.result()
                    await backlog.add(event)
            finally:
                batches.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await batches

        name = f"follow-{stream_name}".replace(".", "-")
        agent.__name__ = agent.__qualname__ = name.replace("-", "_")
        self.app.agent(topic, name=name)(agent)

    async def _batches(
        self,
        members: list[tuple[Processor[Any], Sink | None]],
        stream: faust.StreamT[bytes],
        backlog: _Backlog,
    ) -> None:
        behind = False
        while True:
            if behind:
                events = await backlog.take(self._max_batch_size, BEHIND_WINDOW_S, from_now=True)
            else:
                events = await backlog.take(self._batch_size, WINDOW_S)
            behind = self._left_on_kafka(events) >= self._batch_size
            entries = [self._entry(e) for e in events]
            # Side by side, as on the embedded runtime: one waits for PostgreSQL while another
            # folds. Each keeps its own offsets, so one that fails is retried alone.
            await asyncio.gather(*(self._process(p, sink, entries) for p, sink in members))
            for event in events:
                await stream.ack(event)

    def _left_on_kafka(self, events: list[EventT[bytes]]) -> int:
        """How many entries Kafka holds beyond ``events`` in their partitions, as of the
        consumer's last fetch."""
        last = {e.message.tp: e.message.offset for e in events}
        left = 0
        for tp, offset in last.items():
            try:
                high: int | None = self.app.consumer.highwater(tp)  # None: not fetched yet
            except Exception:  # a hint only: the partition was revoked, or the consumer stops
                continue
            if high is not None:
                left += max(0, high - offset - 1)
        return left

    def _entry(self, event: EventT[bytes]) -> Entry:
        m = event.message
        return Entry(
            Position(self._topics.stream(m.topic), m.partition, m.offset),
            (m.key or b"").decode("utf-8", "replace"),
            m.value or b"",
            datetime.fromtimestamp(m.timestamp, UTC),
        )

    async def _process(
        self, processor: Processor[Any], sink: Sink | None, entries: list[Entry]
    ) -> None:
        backoff_s = 0.5
        while True:  # a batch is never skipped: retry until the database takes it
            try:
                connections = await self._open()
                runner = self._runners.get(processor.name)
                if runner is None:
                    runner = ProcessorRunner(
                        processor,
                        sink,
                        connections.log,
                        connections.pool,
                        decoded_by=self._followers[processor.input_stream],
                    )
                    self._runners[processor.name] = runner
                # It leaves out the entries PostgreSQL has committed (a redelivery).
                await runner.process(entries)
                await runner.publish()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    # Stopping: a cancellation inside psycopg can surface as another error
                    # ("the connection is closed"); retrying would keep the worker from stopping.
                    raise
                logger.exception(
                    "processor %s failed on a batch; retrying in %.1fs", processor.name, backoff_s
                )
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, 10.0)

    async def close(self) -> None:
        """Close the PostgreSQL pool and the Kafka producer, once the agents have stopped."""
        if self._connections is not None:
            connections, self._connections = self._connections, None
            await connections.log.close()
            await connections.pool.close()

    def run(self, loglevel: str = "warning") -> None:
        """Run a faust worker until it is stopped (SIGTERM / SIGINT)."""
        try:
            _Worker(self, loglevel=loglevel, quiet=True).execute_from_commandline()
        finally:
            if self._own_datadir:
                shutil.rmtree(self.datadir, ignore_errors=True)


class _Worker(faust.Worker):
    """A faust worker that closes the ledger's connections when it shuts down, after its agents
    (left open, aiokafka logs an error for the producer on every stop)."""

    def __init__(self, ledger: FaustLedger, **kwargs: Any) -> None:
        super().__init__(ledger.app, **kwargs)
        self._ledger = ledger

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        # No start-up spinner: faust's sets the root logger to DEBUG for good, and every
        # debug call of aiokafka and faust (one per message sent) then makes a log record.
        self.spinner = None

    async def on_shutdown(self) -> None:
        await self._ledger.close()
