"""Failed attempts, counted per key (a client address and a name), with a backoff: after
``allowed`` failures within ``window_s``, attempts wait 1 s, doubling with each further failure
up to the window. No I/O; the clock is given."""

from __future__ import annotations

from collections.abc import Callable


class Throttle:
    def __init__(
        self,
        clock: Callable[[], float],
        *,
        allowed: int = 5,
        window_s: float = 60.0,
        max_keys: int = 10_000,
    ) -> None:
        self._clock = clock
        self._allowed = allowed
        self._window_s = window_s
        self._max_keys = max_keys
        self._failures: dict[tuple[str, ...], list[float]] = {}

    def wait_s(self, key: tuple[str, ...]) -> float:
        """How long this key must wait before its next attempt is checked (0: now)."""
        now = self._clock()
        recent = [t for t in self._failures.get(key, []) if now - t < self._window_s]
        if len(recent) < self._allowed:
            return 0.0
        until = recent[-1] + min(2.0 ** (len(recent) - self._allowed), self._window_s)
        return max(0.0, until - now)

    def failed(self, key: tuple[str, ...]) -> None:
        now = self._clock()
        if len(self._failures) >= self._max_keys:
            self._failures.clear()
        recent = [t for t in self._failures.get(key, []) if now - t < self._window_s]
        self._failures[key] = [*recent, now]

    def succeeded(self, key: tuple[str, ...]) -> None:
        self._failures.pop(key, None)
