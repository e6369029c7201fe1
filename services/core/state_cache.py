"""The states a processor runner read or wrote lately, kept in memory between batches.

A stored state carries the token of the batch that wrote it (``processor_state.written_by``).
The runner still locks every state its batch folds into, but reads a state's bytes, and parses
them, only when the stored token is not the one it holds: so a worker that owns its partitions
reads each state once, while a state written by anybody else (a consumer that took the
partition over, a reset) is read again. What a batch read and wrote is kept only once that
batch has committed; a batch that fails empties the cache.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

S = TypeVar("S")

_RECENT = 100  # batches: a state used within this many is not the one to evict


class StateCache(Generic[S]):
    def __init__(self, budget_bytes: int, keeps: Callable[[str], bool] = lambda key: True) -> None:
        # key -> (written_by, state, stored size, batch last used): the least recently used first
        self._entries: OrderedDict[str, tuple[str, S, int, int]] = OrderedDict()
        self._budget_bytes = budget_bytes
        self._keeps = keeps  # whether a key's state is worth its room (``Processor.keep_cached``)
        self._bytes = 0
        self._batches = 0  # committed
        self._staged: dict[str, tuple[str, S, int] | None] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def tokens(self, keys: Iterable[str]) -> dict[str, str]:
        """The token held for each of ``keys`` that is cached."""
        return {k: self._entries[k][0] for k in keys if k in self._entries}

    def hit(self, key: str) -> S:
        """The cached state of ``key``, kept (as used lately) if the batch commits."""
        written_by, state, size, _ = self._entries[key]
        self._staged[key] = (written_by, state, size)
        return state

    def begin(self) -> None:
        """A batch starts: nothing staged."""
        self._staged = {}

    def stage(self, key: str, written_by: str | None, state: S, size: int) -> None:
        """``state`` is stored under ``key``, written by ``written_by``, once the batch commits
        (a state without a token, or of a key not worth keeping, is not kept)."""
        if written_by is None or not self._keeps(key):
            self._staged[key] = None
        else:
            self._staged[key] = (written_by, state, size)

    def spoil(self, keys: Iterable[str]) -> None:
        """The batch's fold failed on these states: they are read again next time, unless the
        batch then writes them (``stage`` after this)."""
        for key in keys:
            self._staged[key] = None

    def commit(self) -> None:
        """The batch committed: keep what it staged, within the budget."""
        self._batches += 1
        for key, entry in self._staged.items():
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old[2]
            if entry is not None and entry[2] <= self._budget_bytes:
                self._entries[key] = (*entry, self._batches)
                self._bytes += entry[2]
        self._staged = {}
        while self._bytes > self._budget_bytes:
            # Batches that cycle over more states than fit would evict each least recently used
            # one just before it is needed again, and never hit: while the least recently used
            # is still in use, the newest go instead, and the others stay.
            in_use = next(iter(self._entries.values()))[3] > self._batches - _RECENT
            _, (_, _, size, _) = self._entries.popitem(last=in_use)
            self._bytes -= size

    def clear(self) -> None:
        """A batch failed: whatever it did to a cached state, nothing cached is trusted."""
        self._entries.clear()
        self._staged = {}
        self._bytes = 0
