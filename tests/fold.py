"""A processor folded over events as the runtime does it, without I/O: in batches, each state
settled at the end of its batch (``Processor.settle``) and, if asked, stored as JSON between
batches."""

from __future__ import annotations

import json
from collections.abc import Sequence
from itertools import cycle
from typing import Any, TypeVar

from chargeledger.core.events import Event
from chargeledger.core.log_port import Position
from chargeledger.core.processor import Processor

S = TypeVar("S")


def fold(
    processor: Processor[S],
    events: Sequence[Event],
    *,
    batch_sizes: Sequence[int] = (1,),
    persist_between: bool = False,
    stream: str = "ocpp.frames",
    partition: int = 0,
    start: int = 0,
    states: dict[str, S] | None = None,
) -> tuple[dict[str, S], list[Event]]:
    """The states by key and every output, in order; batches take their sizes from
    ``batch_sizes`` in turn. ``events`` are at offsets 0, 1, ... of ``partition``; the fold
    begins at ``start`` with ``states`` (a processor that stopped there)."""
    states = dict(states or {})
    outputs: list[Event] = []
    sizes = cycle(batch_sizes)
    offset = start
    while offset < len(events):
        end = min(len(events), offset + max(1, next(sizes)))
        if persist_between:
            states = {k: _roundtrip(processor, s) for k, s in states.items()}
        changed: list[str] = []
        for n in range(offset, end):
            event = events[n]
            mine = {
                k: states.get(k, processor.initial_state()) for k in processor.state_keys(event)
            }
            new_states, out = processor.evolve_all(mine, event, Position(stream, partition, n))
            outputs += out
            states.update(new_states)
            changed += new_states
        for key in sorted(set(changed)):
            states[key], out = processor.settle(key, states[key])
            outputs += out
        offset = end
    return states, outputs


def _roundtrip(processor: Processor[Any], state: Any) -> Any:
    return processor.load_state(json.loads(processor.encode_state(state)))
