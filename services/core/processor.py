"""The processor: pure domain logic folded over a log by a runtime (``core.runtime`` on the
embedded log, ``core.faust_runtime`` on Kafka). No I/O here: a processor sees events and log
positions and returns its new state and its outputs."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from typing import Any, Generic, Protocol, TypeVar

from .events import Event
from .log_port import Position

S = TypeVar("S")


class EventCodec(Protocol):
    """How events are written as bytes (``core.codec``, Avro), for a processor that keeps one
    in its state: handed in, so that the domain imports no serialisation library."""

    def encode(self, event: Event) -> bytes: ...

    def decode(self, data: bytes) -> Event: ...


class Processor(ABC, Generic[S]):
    """Pure domain logic: no I/O, no clock, no randomness."""

    name: str
    input_stream: str
    # Streams of reference data (append-only, never retroactive, such as tariffs): the runtime
    # reads each to its end before every batch and hands the new events to ``refer``.
    reference_streams: tuple[str, ...] = ()

    @abstractmethod
    def state_key(self, event: Event) -> str | None:
        """Which state this event folds into; None for a stateless step."""

    @abstractmethod
    def initial_state(self) -> S: ...

    @abstractmethod
    def evolve(self, state: S, event: Event, position: Position) -> tuple[S, list[Event]]: ...

    @abstractmethod
    def dump_state(self, state: S) -> dict[str, Any]: ...

    @abstractmethod
    def load_state(self, data: dict[str, Any]) -> S: ...

    def encode_state(self, state: S) -> bytes:
        """``dump_state`` as JSON text, as it is stored (a processor may build it faster)."""
        return json.dumps(self.dump_state(state)).encode()

    def refer(self, event: Event) -> None:
        """Take in one event of ``reference_streams``, each once, in log order per partition."""
        return None

    def settle(self, key: str, state: S) -> tuple[S, list[Event]]:
        """After the last event of a batch, once for every state the batch changed (in key
        order): the outputs a processor gathers over a batch rather than emits per event.
        Where batches begin and end may change how many there are, never what the last says."""
        return state, []

    def keep_cached(self, key: str) -> bool:
        """Whether a runtime keeps ``key``'s state in memory between batches (within its
        budget). A state most batches read is worth it; one read again rarely only takes room
        a busy one could use."""
        return True

    def state_keys(self, event: Event) -> tuple[str, ...]:
        """Every state this event folds into (by default the one of ``state_key``); each is
        loaded and stored on its own, so a processor can keep small states per key."""
        key = self.state_key(event)
        return (key,) if key else ()

    def evolve_all(
        self, states: dict[str, S], event: Event, position: Position
    ) -> tuple[dict[str, S], list[Event]]:
        """Fold the event into the states of ``state_keys`` (given by key); return the new
        ones and the outputs. A processor with more than one key per event overrides this."""
        keys = self.state_keys(event)
        if not keys:
            return {}, self.evolve(self.initial_state(), event, position)[1]
        state, outputs = self.evolve(states[keys[0]], event, position)
        return {keys[0]: state}, outputs


class StatelessProcessor(Processor[None]):
    """A processor that keeps no state: its sink (or ``evolve``'s outputs) does the work."""

    def state_key(self, event: Event) -> str | None:
        return None

    def initial_state(self) -> None:
        return None

    def evolve(self, state: None, event: Event, position: Position) -> tuple[None, list[Event]]:
        return None, []

    def dump_state(self, state: None) -> dict[str, Any]:
        return {}

    def load_state(self, data: dict[str, Any]) -> None:
        return None
