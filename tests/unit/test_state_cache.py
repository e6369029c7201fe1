"""The states a runner keeps between batches (``core.state_cache``)."""

from __future__ import annotations

from chargeledger.core.state_cache import StateCache


def batch(cache: StateCache[str], key: str, *, fail: bool = False) -> bool:
    """One batch folding into ``key``'s state (size 1), as the runner does; whether it was
    cached."""
    cache.begin()
    cached = bool(cache.tokens([key]))
    if cached:
        cache.hit(key)
    cache.stage(key, f"token-{key}", f"state of {key}", 1)
    if fail:
        cache.clear()
    else:
        cache.commit()
    return cached


def test_a_cycle_over_more_states_than_fit_still_finds_most_of_them() -> None:
    cache: StateCache[str] = StateCache(budget_bytes=10)
    keys = [f"station-{n}" for n in range(12)]
    for key in keys:
        batch(cache, key)
    found = [batch(cache, key) for _ in range(4) for key in keys]
    # Least recently used out first, every batch would miss.
    assert sum(found) >= 4 * 9
    assert len(cache) == 10


def test_states_unused_for_long_make_room_for_the_ones_in_use() -> None:
    cache: StateCache[str] = StateCache(budget_bytes=3)
    for key in ("old-1", "old-2", "old-3"):
        batch(cache, key)
    for _ in range(200):
        batch(cache, "busy")
    assert cache.tokens(["busy", "old-1"]) == {"busy": "token-busy"}


def test_a_failed_batch_trusts_nothing_cached() -> None:
    cache: StateCache[str] = StateCache(budget_bytes=10)
    batch(cache, "a")
    batch(cache, "b", fail=True)
    assert cache.tokens(["a", "b"]) == {}


def test_a_state_the_fold_failed_on_is_read_again() -> None:
    cache: StateCache[str] = StateCache(budget_bytes=10)
    batch(cache, "a")
    batch(cache, "b")
    cache.begin()
    cache.hit("a")
    cache.hit("b")
    cache.spoil(["a"])
    cache.commit()
    assert cache.tokens(["a", "b"]) == {"b": "token-b"}
