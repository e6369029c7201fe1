"""Review decisions on sessions held back from invoicing, by a person, as events on the log.

A decision goes onto ``invoicing.completions`` (through the outbox), so the invoice processor
meets it in the recorded order with the completions, live and on every replay.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from typing import Literal

from ..core import codec
from ..core.events import ReviewDecision, SessionEvent
from ..core.outbox import OutboxWriter
from .invoices import InvoiceProcessor

Decision = Literal["release", "dismiss"]


class ReviewError(ValueError):
    """A decision that cannot be taken; ``status`` is the HTTP status that says why."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class HeldSession:
    reason: str
    session: SessionEvent


class Reviews(OutboxWriter):
    producer = "reviews"

    async def held(self) -> dict[str, HeldSession]:
        """The sessions held now, with why and the revision held."""
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT state FROM processor_state WHERE processor = %s"
                " AND convert_from(state, 'UTF8')::jsonb -> 'held' <> '{}'::jsonb",
                (InvoiceProcessor.name,),
            )
            rows = await cursor.fetchall()
        found: dict[str, HeldSession] = {}
        for (raw,) in rows:
            state = json.loads(bytes(raw))
            sessions = state.get("held_sessions", {})
            for session_id, reason in state.get("held", {}).items():
                if session_id not in sessions:
                    continue  # held by an earlier version, which did not keep the revision
                session = codec.decode(base64.b64decode(sessions[session_id]))
                if isinstance(session, SessionEvent):
                    found[session_id] = HeldSession(reason, session)
        return found

    async def decide(
        self,
        session_id: str,
        decision: Decision,
        *,
        reviewer: str,
        note: str = "",
        revision: int | None = None,
        actor: str | None = None,
    ) -> ReviewDecision:
        held = (await self.held()).get(session_id)
        if held is None:
            raise ReviewError(f"session {session_id!r} is not held for review", 404)
        if revision is not None and revision != held.session.revision:
            raise ReviewError(
                f"session {session_id!r} is held at revision {held.session.revision}, not"
                f" {revision}: look at it again",
                409,
            )
        event = ReviewDecision(
            event_id=f"review:{uuid.uuid4()}",
            session_id=session_id,
            session_revision=held.session.revision,
            decision=decision,
            reviewer=reviewer,
            decided_at=self._clock(),
            note=note,
            actor=actor,
        )
        async with self._pool.connection() as conn:
            await self._emit(conn, event)
        await self.publish()
        return event
