"""Sends the registry's id tokens to a station as its local authorization list.

Asks the station for its list version (GetLocalListVersion), works out what it holds from the
SendLocalList requests it accepted before (the ``commands`` table), and sends a Differential
update, or a Full one when that is unknown or asked for. A Differential update the station
refuses with VersionMismatch is followed by a Full one. Every CALL is a command like any other:
logged, and listed at ``GET /api/v1/commands/{command_id}``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool

from ..core.db import tolerate_out_of_range_times
from .commands import CommandSender, Outcome
from .local_list import StationList, Token, Update, held, plan


@dataclass
class SyncResult:
    station_id: str
    ocpp_version: str
    status: str  # the station's SendLocalList status, UpToDate, NotSupported, or how a CALL ended
    station_list_version: int | None = None  # as the station reported it before the update
    list_version: int | None = None  # the version the station holds now, as far as we know
    update_type: str | None = None  # Full, Differential, or None when nothing was sent
    sent_version: int | None = None  # the list version of the update sent
    added: int = 0
    changed: int = 0
    removed: int = 0
    skipped: list[str] = field(default_factory=list)
    command_ids: list[str] = field(default_factory=list)
    outcome: str = "Answered"  # how the last CALL ended: Answered, CallError, Timeout, Offline
    error: str | None = None


class LocalListSync:
    def __init__(
        self, pool: AsyncConnectionPool, sender: CommandSender, clock: Callable[[], datetime]
    ) -> None:
        self._pool = pool
        self._sender = sender
        self._clock = clock

    async def known(self, station_id: str) -> StationList | None:
        """What the station holds, from the SendLocalList requests it accepted."""
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT payload FROM commands WHERE station_id = %s AND action = 'SendLocalList'"
                " AND status = 'Answered' AND response->>'status' = 'Accepted'"
                " ORDER BY requested_at, command_id",
                (station_id,),
            )
            return held([row[0] for row in await cursor.fetchall()])

    async def _tokens(self) -> list[Token]:
        async with self._pool.connection() as conn, conn.cursor() as cursor:
            tolerate_out_of_range_times(cursor)  # an expiry stored before it was bounded
            await cursor.execute(
                "SELECT id_token, status, expires_at, group_id, token_type FROM id_tokens"
                " ORDER BY id_token"
            )
            return [Token(*row) for row in await cursor.fetchall()]

    async def sync(
        self, station_id: str, *, full: bool, timeout_s: int, actor: str | None = None
    ) -> SyncResult:
        _, version = await self._sender.connection(station_id)
        result = SyncResult(station_id, version, status="")
        asked = await self._send(result, "GetLocalListVersion", {}, timeout_s, actor)
        if asked is None:
            return result
        reported = asked.get("listVersion", asked.get("versionNumber"))
        if type(reported) is not int or (version == "ocpp1.6" and reported < 0):
            # OCPP 1.6: -1 is a station without local authorization lists.
            result.status = "NotSupported"
            result.error = f"the station reports list version {reported!r}: no local list"
            return result
        result.station_list_version = reported
        tokens = await self._tokens()
        known = await self.known(station_id)
        update = plan(version, tokens, known, reported, full=full, now=self._clock())
        answer = await self._apply(result, update, timeout_s, actor)
        if answer == "VersionMismatch" and update.update_type == "Differential":
            update = plan(version, tokens, None, reported, full=True, now=self._clock())
            await self._apply(result, update, timeout_s, actor)
        return result

    async def _apply(
        self, result: SyncResult, update: Update, timeout_s: int, actor: str | None
    ) -> str | None:
        result.skipped = list(update.skipped)
        if update.payload is None:
            result.status, result.list_version = "UpToDate", update.version
            return result.status
        answer = await self._send(result, "SendLocalList", update.payload, timeout_s, actor)
        if answer is None:
            return None
        result.status = str(answer.get("status"))
        result.update_type, result.sent_version = update.update_type, update.version
        result.added, result.changed, result.removed = update.added, update.changed, update.removed
        result.list_version = update.version if result.status == "Accepted" else None
        return result.status

    async def _send(
        self,
        result: SyncResult,
        action: str,
        payload: dict[str, Any],
        timeout_s: int,
        actor: str | None,
    ) -> dict[str, Any] | None:
        """The station's answer; None (and the result says why) when there is none."""
        outcome: Outcome = await self._sender.send(
            result.station_id, action, payload, timeout_s, actor=actor
        )
        result.command_ids.append(outcome.command_id)
        result.outcome = outcome.status
        if outcome.status == "Answered" and isinstance(outcome.response, dict):
            return outcome.response
        result.status = outcome.status
        result.error = f"{action}: {outcome.error_code or outcome.status}" + (
            f" ({outcome.error_description})" if outcome.error_description else ""
        )
        return None
