"""The one wiring module: builds and runs gateway, ledger, invoicing and API from Settings."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import socket
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.synchronize import Event as StopEvent
from typing import Any
from zoneinfo import ZoneInfo

import uvicorn
from psycopg_pool import AsyncConnectionPool

from .access.audit import AUDITED_STREAMS, AuditProcessor
from .access.projection import AuditSink
from .api.app import create_app
from .api.processing_errors import stuck
from .core import codec, db
from .core.db_watch import DatabaseWatch
from .core.events import (
    COMMAND_RESULTS,
    COMMANDS,
    COMPLETIONS,
    CONNECTIONS,
    FRAMES,
    INVOICES,
    METER_KEYS,
    METER_READINGS,
    SESSIONS,
    STATION_NOTIFICATIONS,
    STATION_STATUS,
    STATION_TIME_ZONES,
    STATIONS,
    TARIFF_ASSIGNMENTS,
    TARIFFS,
    TOKENS,
)
from .core.log import EventLog, KafkaLog, PostgresLog
from .core.log_port import EVERY_PARTITION, Share
from .core.processor import Processor
from .core.runtime import (
    BEHIND_BATCH,
    LIVE_BATCH,
    PROCESSING_ERRORS,
    ProcessorRunner,
    Sink,
    Sinks,
)
from .core.settings import Settings
from .core.workers import Workers, WorkerSpec, follow
from .gateway.admission import Admission
from .gateway.authorization import TokenCache
from .gateway.certificates import StationCa
from .gateway.commands import CommandSender
from .gateway.local_list_sync import LocalListSync
from .gateway.server import Gateway, InputLimits, tls_context
from .gateway.services import StationServices
from .gateway.transaction_ids import TransactionIdAllocator
from .invoicing.invoices import InvoiceProcessor
from .invoicing.meter_key_store import MeterKeyStore
from .invoicing.ocpi import Tariff
from .invoicing.projection import InvoiceSink
from .invoicing.reviews import Reviews
from .invoicing.sequence import CompletionSequencer
from .invoicing.station_zone_store import StationZoneStore
from .invoicing.tariff import load_tariff
from .invoicing.tariff_store import TariffStore
from .ledger.projections import FrameIndex, FrameSink, PresenceSink, SessionSink, StationSink
from .ledger.sessions import SessionsProcessor
from .ledger.stations import PresenceProcessor
from .registry.store import Registry

logger = logging.getLogger(__name__)

STREAMS = [
    FRAMES,
    CONNECTIONS,
    SESSIONS,
    METER_READINGS,
    STATION_STATUS,
    STATION_NOTIFICATIONS,
    COMPLETIONS,
    INVOICES,
    STATIONS,
    TOKENS,
    TARIFFS,
    TARIFF_ASSIGNMENTS,
    METER_KEYS,
    STATION_TIME_ZONES,
    COMMANDS,
    COMMAND_RESULTS,
]


def processors(settings: Settings, tariff: Tariff) -> list[tuple[Processor[Any], Sink | None]]:
    """Every processor of ledger and invoicing, with its projection: the same on both runtimes."""
    return [
        # On the PostgreSQL log the API reads frames from the log itself: no index to copy.
        *([(FrameIndex(), FrameSink())] if settings.kafka_bootstrap is not None else []),
        # One processor pairs each CALL with its answer for both: sessions and station status.
        (SessionsProcessor(), Sinks(SessionSink(), StationSink())),
        (PresenceProcessor(), PresenceSink()),
        (CompletionSequencer(), None),
        (
            InvoiceProcessor(
                tariff,
                issuer=settings.invoice_issuer,
                codec=codec,
                zone=ZoneInfo(settings.timezone),
            ),
            InvoiceSink(),
        ),
        *((AuditProcessor(stream), AuditSink()) for stream in AUDITED_STREAMS),
    ]


def runners(
    settings: Settings,
    log: EventLog,
    pool: AsyncConnectionPool,
    *,
    share: Share = EVERY_PARTITION,
    batch_size: int = LIVE_BATCH,
    stop_at: dict[str, dict[int, int]] | None = None,
    sequence: bool = True,
) -> list[ProcessorRunner[Any]]:
    """A runner for every processor over ``log``, on the partitions of ``share``. ``stop_at``:
    process nothing at or past these offsets (by processor, then partition). ``sequence``:
    False in a replay, which reads the recorded completion order instead of making one."""
    chosen = [
        (processor, sink)
        for processor, sink in processors(settings, load_tariff(settings.tariff))
        if sequence or not isinstance(processor, CompletionSequencer)
    ]
    followers = Counter(processor.input_stream for processor, _ in chosen)
    return [
        ProcessorRunner(
            processor,
            sink,
            log,
            pool,
            batch_size=batch_size,
            max_batch_size=BEHIND_BATCH,
            stuck_after_s=settings.processor_stuck_after_s,
            stop_at=None if stop_at is None else stop_at.get(processor.name, {}),
            share=share,
            decoded_by=followers[processor.input_stream],
        )
        for processor, sink in chosen
    ]


def work(spec: WorkerSpec, reports: Any, stop: StopEvent) -> None:
    """A worker process (``core.workers``): every processor on its share of the partitions."""
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    async def run() -> None:
        s = spec.settings
        pool = await db.open_pool(spec.dsn, max_size=4)
        log: EventLog
        if spec.kafka:
            log = kafka_log(s, client_id=f"chargeledger-worker-{spec.share.index}")
        else:
            log = PostgresLog(pool, partitions=spec.partitions or s.log_partitions)
        try:
            await log.start()
            mine = runners(
                s,
                log,
                pool,
                share=spec.share,
                batch_size=spec.batch_size,
                stop_at=spec.stop_at,
                sequence=spec.sequence,
            )
            await follow(mine, spec.share.index, reports, stop)
        finally:
            await log.close()
            await pool.close()

    asyncio.run(run())


def kafka_log(settings: Settings, *, client_id: str) -> KafkaLog:
    """The Kafka log of ``--log kafka://HOST:PORT``, with the topic settings."""
    assert settings.kafka_bootstrap is not None
    return KafkaLog(
        settings.kafka_bootstrap,
        partitions=settings.log_partitions,
        replication_factor=settings.kafka_replication_factor,
        min_insync_replicas=settings.kafka_min_insync_replicas,
        topic_prefix=settings.kafka_topic_prefix,
        client_id=client_id,
    )


def run_faust_ledger(settings: Settings, *, loglevel: str) -> None:
    """``chargeledger ledger``: the processors as faust agents over Kafka (blocks until stopped)."""
    bootstrap = settings.kafka_bootstrap
    if bootstrap is None or settings.database_url is None:
        raise ValueError(
            "chargeledger ledger needs --log kafka://HOST:PORT and --database-url: it is the"
            " scaled runtime; `chargeledger up` runs the processors on the embedded log"
        )
    tariff = load_tariff(settings.tariff)
    db.migrate(settings.database_url)

    async def ensure_topics() -> None:
        kafka = kafka_log(settings, client_id="ledger-setup")
        await kafka.start()
        try:
            await kafka.ensure_topics(STREAMS)
        finally:
            await kafka.close()

    asyncio.run(ensure_topics())
    from .core.faust_runtime import FaustLedger  # faust is only imported where it runs

    FaustLedger(
        bootstrap=bootstrap,
        database_url=settings.database_url,
        partitions=settings.log_partitions,
        processors=processors(settings, tariff),
        topic_prefix=settings.kafka_topic_prefix,
        replication_factor=settings.kafka_replication_factor,
        min_insync_replicas=settings.kafka_min_insync_replicas,
        datadir=settings.data_dir / "faust",
    ).run(loglevel=loglevel)


def utc_now() -> datetime:
    return datetime.now(UTC)


class _ApiServer(uvicorn.Server):
    """uvicorn without its own signal handling: ``chargeledger up`` owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket, so that a taken port fails here with a clear OSError."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP, and
    # without it every answer on a kept-alive connection waited 40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"HTTP port {host}:{port}: {exc.strerror}") from exc
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


@dataclass
class Product:
    """Everything ``chargeledger up`` runs, in one process."""

    settings: Settings
    with_processors: bool = True  # False: a gateway (and its API) only
    clock: Callable[[], datetime] = utc_now
    pool: AsyncConnectionPool | None = None
    database: DatabaseWatch | None = None
    log: EventLog | None = None
    gateway: Gateway | None = None
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    runners: list[ProcessorRunner[Any]] = field(default_factory=list)  # in this process
    workers: Workers | None = None  # or in worker processes
    api: _ApiServer | None = None
    http_address: tuple[str, int] | None = None  # where the HTTP API really listens

    async def start(self) -> None:
        s = self.settings
        tariff = load_tariff(s.tariff) if self.with_processors else None
        ssl_context = None
        if s.tls_cert_file is not None and s.tls_key_file is not None:
            client_ca = s.tls_client_ca_file if s.security_profile == 3 else None
            ssl_context = tls_context(
                str(s.tls_cert_file), str(s.tls_key_file), str(client_ca) if client_ca else None
            )
        certificate_authority = None
        if s.csms_ca_cert_file is not None and s.csms_ca_key_file is not None:
            certificate_authority = StationCa.load(s.csms_ca_cert_file, s.csms_ca_key_file)
        if s.database_url is not None:
            dsn = s.database_url
        else:
            dsn = await asyncio.to_thread(db.start_embedded, s.data_dir)
        await asyncio.to_thread(db.migrate, dsn)
        self.pool = pool = await db.open_pool(dsn, max_size=20)
        self.database = database = DatabaseWatch(
            dsn,
            pool,
            embedded_dir=s.data_dir if s.database_url is None else None,
            give_up_after_s=s.database_restart_give_up_s,
        )
        self.tasks.append(asyncio.create_task(database.run(), name="database-watch"))
        gateway_id = s.gateway_id or f"{socket.gethostname()}:{os.getpid()}"
        log: EventLog
        if s.kafka_bootstrap is not None:
            kafka = kafka_log(s, client_id=gateway_id)
            await kafka.start()
            self.log = log = kafka
            await kafka.ensure_topics(STREAMS)
        else:
            log = PostgresLog(self.pool, partitions=s.log_partitions)
            await log.start()
            self.log = log

        if tariff is not None and s.processor_workers == 0:
            self.runners = runners(s, log, self.pool)
        elif tariff is not None:
            count = s.processor_workers
            self.workers = Workers(
                [
                    WorkerSpec(dsn, s, Share(i, count), kafka=s.kafka_bootstrap is not None)
                    for i in range(count)
                ],
                target=work,
                preload=(__name__,),
                stuck_after_s=s.processor_stuck_after_s,
            )
            self.workers.start()
            for processor, _ in processors(s, tariff):  # 0 until a worker reports one
                PROCESSING_ERRORS.labels(processor.name)
            self.tasks.append(asyncio.create_task(self.workers.run(), name="workers"))
        for runner in self.runners:
            self.tasks.append(asyncio.create_task(runner.run(), name=runner.processor.name))

        services = StationServices(
            admission=Admission(
                self.pool,
                unknown_stations=s.unknown_stations,
                security_profile=s.security_profile,
                clock=self.clock,
            ),
            tokens=TokenCache(
                self.pool,
                ttl_s=s.token_cache_ttl_s,
                unknown_tokens=s.unknown_tokens,
                clock=self.clock,
            ),
            transaction_ids=TransactionIdAllocator(
                self.pool, lease_size=s.transaction_id_lease_size
            ),
            clock=self.clock,
            heartbeat_interval_s=s.heartbeat_interval_s,
            boot_retry_interval_s=s.boot_retry_interval_s,
            certificate_authority=certificate_authority,
        )
        self.gateway = Gateway(
            log,
            self.pool,
            services,
            gateway_id=gateway_id,
            limits=InputLimits(s.max_frame_bytes, s.rate_limit_per_s, s.rate_limit_burst),
            ssl_context=ssl_context,
            lease_s=s.gateway_lease_s,
            database_problem=lambda: database.problem,
            compression=s.websocket_compression,
        )
        try:
            await self.gateway.start(s.ocpp_host, s.ocpp_port)
        except OSError as exc:
            raise OSError(
                exc.errno, f"OCPP port {s.ocpp_host}:{s.ocpp_port}: {exc.strerror}"
            ) from exc

        registry = Registry(self.pool, log, self.clock)
        await registry.publish()  # what a previous run committed but did not publish
        tariffs = TariffStore(self.pool, log, self.clock)
        await tariffs.publish()
        if tariff is not None:
            await tariffs.adopt_default(tariff)
        meter_keys = MeterKeyStore(self.pool, log, self.clock)
        await meter_keys.publish()
        station_zones = StationZoneStore(self.pool, log, self.clock)
        await station_zones.publish()
        reviews = Reviews(self.pool, log, self.clock)
        await reviews.publish()
        commands = CommandSender(self.pool, log, self.clock)
        app = create_app(
            self.pool,
            log_name=log.name,
            check_log=log.ping,
            registry=registry,
            commands=commands,
            local_list=LocalListSync(self.pool, commands, self.clock),
            tariffs=tariffs,
            meter_keys=meter_keys,
            station_zones=station_zones,
            reviews=reviews,
            max_request_body_bytes=s.max_request_body_bytes,
            stuck=lambda: stuck(self.runners) or (self.workers.stuck() if self.workers else None),
            database_problem=lambda: database.problem,
            api_auth=s.api_auth,
            metrics_open=not s.metrics_auth,
            session_lifetime=timedelta(hours=s.session_hours),
            secure_cookie=s.session_cookie_secure,
            frames_in_log=isinstance(log, PostgresLog),
        )
        http_socket = _listen(s.http_host, s.http_port)
        self.http_address = tuple(http_socket.getsockname()[:2])
        config = uvicorn.Config(app, log_level="warning", lifespan="off")
        self.api = _ApiServer(config)
        self.tasks.append(asyncio.create_task(self.api.serve([http_socket]), name="http-api"))
        while not self.api.started:
            if self.tasks[-1].done():
                self.tasks[-1].result()
                raise OSError(f"the HTTP API did not start on {s.http_host}:{s.http_port}")
            await asyncio.sleep(0.02)
        # What start-up built (modules, schemas, compiled validators) lives as long as the
        # process: keep it out of the collector's scans, and collect young objects less often.
        # Both shorten the pauses that show up in the gateway's tail latency.
        gc.freeze()
        gc.set_threshold(20_000, 20, 20)

    async def has_users(self) -> bool:
        """Whether any enabled user exists (else nobody can log in to the console)."""
        assert self.pool is not None
        async with self.pool.connection() as conn:
            cursor = await conn.execute("SELECT 1 FROM users WHERE enabled LIMIT 1")
            return await cursor.fetchone() is not None

    async def wait(self) -> None:
        """Return when a component stops by itself (which is a failure)."""
        done, _ = await asyncio.wait(self.tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()

    async def stop(self) -> None:
        if self.gateway is not None:
            await self.gateway.stop()
        if self.api is not None:
            self.api.should_exit = True
        for runner in self.runners:
            runner.stop()
        if self.workers is not None:
            await self.workers.stop()
        for task in self.tasks:
            if task.get_name() == "database-watch":  # runs until cancelled; nothing to commit
                task.cancel()
        if self.tasks:
            # Each processor commits the batch in hand and returns; cancel only what hangs.
            _, hanging = await asyncio.wait(self.tasks, timeout=15)
            for task in hanging:
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.log is not None:
            await self.log.close()
        if self.pool is not None:
            await self.pool.close()
