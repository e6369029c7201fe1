"""Commands to stations (CSMS-initiated CALLs), through the log.

The API appends a ``Command`` to ``gateway.commands`` naming the connection that holds the
station (``station_connections``). Every gateway follows that stream; the one holding the
connection sends the CALL, waits for the station's answer (which is logged like every frame) and
appends a ``CommandResult``; the ``commands`` row gives the API caller the outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from ocpp.exceptions import OCPPError
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from ..core import codec
from ..core.db import DatabaseUnavailable
from ..core.events import COMMANDS, Command, CommandResult
from ..core.log import EventLog, LogError, Record
from . import metrics
from .actions import COMMAND_ACTIONS
from .validation import Validators

logger = logging.getLogger(__name__)

MAX_TIMEOUT_S = 300
# How long past a command's timeout the API waits for the gateway's own report of it (which
# comes at the timeout) before it gives the command up as timed out (its gateway died).
REPORT_GRACE_S = 0.5


@dataclass(frozen=True)
class Answer:
    """What came back for a CALL: a CALLRESULT payload, or a CALLERROR."""

    payload: Any = None
    error_code: str | None = None
    error_description: str | None = None


class CallsStations(Protocol):
    """A station connection that can send a CALL and wait for its answer."""

    async def call(self, unique_id: str, action: str, payload: Any, timeout_s: float) -> Answer: ...


class CommandError(Exception):
    """A command the API cannot send; ``status`` is the HTTP status that says why."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Outcome:
    command_id: str
    station_id: str
    action: str
    status: str  # Answered, CallError, Timeout, Offline
    response: Any
    error_code: str | None
    error_description: str | None
    requested_at: datetime
    completed_at: datetime | None


class CommandSender:
    """The API side: check, append, and wait for the outcome."""

    def __init__(
        self, pool: AsyncConnectionPool, log: EventLog, clock: Callable[[], datetime]
    ) -> None:
        self._pool = pool
        self._log = log
        self._clock = clock

    async def send(
        self,
        station_id: str,
        action: str,
        payload: Any,
        timeout_s: int,
        *,
        actor: str | None = None,
    ) -> Outcome:
        if not 1 <= timeout_s <= MAX_TIMEOUT_S:
            raise CommandError(f"timeout_s must be 1 to {MAX_TIMEOUT_S} seconds", 422)
        deadline = asyncio.get_running_loop().time() + timeout_s + REPORT_GRACE_S
        connection_id, version = await self.connection(station_id)
        if action not in COMMAND_ACTIONS[version]:
            raise CommandError(
                f"{action} is not a command for {version} stations; use one of "
                + ", ".join(sorted(COMMAND_ACTIONS[version])),
                422,
            )
        try:
            Validators(version).request(action, payload)
        except OCPPError as exc:
            raise CommandError(
                f"{action} payload does not match the {version} schema: {exc.details}", 422
            ) from None
        command_id = uuid.uuid4().hex
        now = self._clock()
        async with self._pool.connection() as conn:
            await conn.execute(
                "INSERT INTO commands (command_id, station_id, action, payload, requested_at,"
                " status) VALUES (%s, %s, %s, %s, %s, 'Requested')",
                (command_id, station_id, action, Jsonb(payload), now),
            )
        command = Command(
            event_id=f"command:{command_id}",
            command_id=command_id,
            station_id=station_id,
            connection_id=connection_id,
            action=action,
            payload_json=json.dumps(payload, separators=(",", ":")),
            requested_at=now,
            timeout_s=timeout_s,
            actor=actor,
        )
        try:
            await self._log.append([Record(command.STREAM, command.key, codec.encode(command))])
        except LogError as exc:
            async with self._pool.connection() as conn:
                await conn.execute(
                    "UPDATE commands SET status = 'Offline', completed_at = %s,"
                    " error_description = %s WHERE command_id = %s",
                    (self._clock(), f"not sent: {exc}", command_id),
                )
            message = f"the command could not be logged, so it was not sent: {exc}"
            raise CommandError(message, 503) from exc
        return await self._wait(command_id, deadline)

    async def connection(self, station_id: str) -> tuple[str, str]:
        """The id and OCPP version of the station's connection; 409 when it has none, or when
        the lease of the gateway holding it ran out (that gateway is dead)."""
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT c.connection_id, c.ocpp_version FROM station_connections c"
                " LEFT JOIN gateway_leases l ON l.lease_id = c.lease_id"
                " WHERE c.station_id = %s AND (c.lease_id IS NULL OR l.expires_at > now())",
                (station_id,),
            )
            row = await cursor.fetchone()
        if row is None:
            raise CommandError(f"station {station_id!r} is not connected", 409)
        return str(row[0]), str(row[1])

    async def _wait(self, command_id: str, deadline: float) -> Outcome:
        loop = asyncio.get_running_loop()
        pause_s = 0.01
        while True:
            outcome = await self.outcome(command_id)
            assert outcome is not None
            if outcome.status != "Requested":
                return outcome
            if loop.time() >= deadline:
                break
            await asyncio.sleep(pause_s)
            pause_s = min(pause_s * 2, 0.1)
        # No gateway answered (the one holding the connection died): it timed out.
        async with self._pool.connection() as conn:
            await conn.execute(
                "UPDATE commands SET status = 'Timeout', completed_at = %s,"
                " error_description = 'no gateway reported an answer in time'"
                " WHERE command_id = %s AND status = 'Requested'",
                (self._clock(), command_id),
            )
        outcome = await self.outcome(command_id)
        assert outcome is not None
        return outcome

    async def outcome(self, command_id: str) -> Outcome | None:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT command_id, station_id, action, status, response, error_code,"
                " error_description, requested_at, completed_at FROM commands"
                " WHERE command_id = %s",
                (command_id,),
            )
            row = await cursor.fetchone()
        return Outcome(*row) if row else None


class CommandRunner:
    """The gateway side: follows ``gateway.commands`` and sends what is for its connections."""

    def __init__(
        self,
        pool: AsyncConnectionPool,
        log: EventLog,
        *,
        gateway_id: str,
        clock: Callable[[], datetime],
        connections: Mapping[str, CallsStations],
    ) -> None:
        self._pool = pool
        self._log = log
        self._gateway_id = gateway_id
        self._clock = clock
        self._connections = connections
        self._next: dict[int, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def start_offsets(self) -> None:
        """Commands from now on: call before the gateway accepts connections."""
        partitions = await self._log.partitions(COMMANDS)
        self._next = {p: await self._log.end_offset(COMMANDS, p) for p in range(partitions)}

    async def _offsets(self, stream: str, partitions: Sequence[int]) -> dict[int, int]:
        return {p: self._next[p] for p in partitions if p in self._next}

    async def run(self) -> None:
        # A group of its own: every gateway sees every command.
        group = f"gateway-commands.{self._gateway_id}.{uuid.uuid4().hex[:8]}"
        subscription = self._log.subscribe(COMMANDS, group, self._offsets)
        try:
            while True:
                try:
                    entries = await subscription.poll(100, 0.5)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    logger.error(
                        "reading gateway.commands failed; retrying in 1 s: %s",
                        exc,
                        exc_info=not isinstance(exc, DatabaseUnavailable),
                    )
                    await asyncio.sleep(1)
                    continue
                for entry in entries:
                    self._next[entry.position.partition] = entry.position.offset + 1
                    with contextlib.suppress(codec.DecodeError):
                        command = codec.decode(entry.value)
                        if (
                            isinstance(command, Command)
                            and command.connection_id in self._connections
                        ):
                            self._spawn(self._send(command))
        finally:
            for task in list(self._tasks):
                task.cancel()
            await subscription.close()

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, command: Command) -> None:
        connection = self._connections.get(command.connection_id)
        status, answer = "Offline", Answer(error_description="the station disconnected")
        deadline = command.requested_at + timedelta(seconds=command.timeout_s)
        remaining_s = (deadline - self._clock()).total_seconds()
        if remaining_s <= 0:
            status, answer = "Timeout", Answer(error_description="the command expired unsent")
        elif connection is not None:
            try:
                answer = await connection.call(
                    command.command_id,
                    command.action,
                    json.loads(command.payload_json),
                    remaining_s,
                )
                status = "CallError" if answer.error_code else "Answered"
            except TimeoutError:
                status = "Timeout"
                answer = Answer(
                    error_description=f"the station did not answer within {command.timeout_s} s"
                )
            except ConnectionError:
                pass
            except Exception as exc:  # the log could not take the frame, or the like
                logger.exception("command %s to %s failed", command.action, command.station_id)
                status, answer = "Offline", Answer(error_description=f"not sent: {exc}")
        await self._report(command, status, answer)

    async def _report(self, command: Command, status: str, answer: Answer) -> None:
        now = self._clock()
        response_json = json.dumps(answer.payload) if answer.payload is not None else None
        result = CommandResult(
            event_id=f"command-result:{command.command_id}",
            command_id=command.command_id,
            station_id=command.station_id,
            status=status,
            gateway_id=self._gateway_id,
            completed_at=now,
            unique_id=command.command_id,
            response_json=response_json,
            error_code=answer.error_code,
            error_description=answer.error_description,
        )
        metrics.COMMANDS.labels(command.action, status).inc()
        try:
            await self._log.append([Record(result.STREAM, result.key, codec.encode(result))])
            async with self._pool.connection() as conn:
                await conn.execute(
                    "UPDATE commands SET status = %s, response = %s, error_code = %s,"
                    " error_description = %s, completed_at = %s"
                    " WHERE command_id = %s AND status = 'Requested'",
                    (
                        status,
                        Jsonb(answer.payload) if answer.payload is not None else None,
                        answer.error_code,
                        answer.error_description,
                        now,
                        command.command_id,
                    ),
                )
        except Exception:
            logger.exception("could not record the outcome of command %s", command.command_id)
