"""The completion sequence: every completed session revision, published again in one order.

``ledger.sessions`` is partitioned by station, and the order in which a reader meets sessions of
different partitions is not fixed: two readers, or a live run and a replay, can interleave them
differently. Invoice numbers must not depend on that. So this stateless step copies each
completed revision onto one partition of ``invoicing.completions``; the order it lands in is
recorded in the log once, and the invoice processor numbers in that order. A replay reads the
recorded order and checks that the sessions it rebuilds complete exactly those revisions.
"""

from __future__ import annotations

import dataclasses

from ..core.events import SESSIONS, CompletedSession, Event, SessionEvent
from ..core.log_port import Position
from ..core.processor import StatelessProcessor


class CompletionSequencer(StatelessProcessor):
    name = "invoicing-sequence"
    input_stream = SESSIONS

    def evolve(self, state: None, event: Event, position: Position) -> tuple[None, list[Event]]:
        if not isinstance(event, SessionEvent) or event.status != "completed":
            return None, []
        return None, [completed(event)]


def completed(session: SessionEvent) -> CompletedSession:
    return CompletedSession(
        **{f.name: getattr(session, f.name) for f in dataclasses.fields(SessionEvent)}
    )
