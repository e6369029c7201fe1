"""How a faust agent's backlog hands out batches: full ones at once, partial ones after the
window, and never more than its limit read ahead."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from chargeledger.core.faust_runtime import _Backlog


def events(*names: str) -> list[Any]:
    return list(names)  # the backlog only keeps and hands out what it is given


async def take(
    backlog: _Backlog, size: int, window_s: float, *, from_now: bool = False
) -> list[Any]:
    return list(await backlog.take(size, window_s, from_now=from_now))


async def fill(backlog: _Backlog, *names: str) -> None:
    for e in events(*names):
        await backlog.add(cast(Any, e))


async def test_a_full_batch_is_taken_without_waiting_for_the_window() -> None:
    backlog = _Backlog(limit=100)
    await fill(backlog, "a", "b", "c", "d")
    # A window of a minute: a backlog that waited for it would not answer within 5 s.
    assert await asyncio.wait_for(take(backlog, 3, window_s=60), 5) == ["a", "b", "c"]


async def test_fewer_than_a_batch_are_taken_once_the_oldest_waited_the_window() -> None:
    backlog = _Backlog(limit=100)
    await fill(backlog, "a", "b")
    assert await asyncio.wait_for(take(backlog, 10, window_s=0.05), 5) == ["a", "b"]


async def test_an_empty_backlog_waits_for_the_first_event() -> None:
    backlog = _Backlog(limit=100)
    taking = asyncio.ensure_future(take(backlog, 10, window_s=0))
    await asyncio.sleep(0.05)
    assert not taking.done()
    await fill(backlog, "a")
    assert await asyncio.wait_for(taking, 5) == ["a"]


async def test_events_left_over_come_first_in_the_next_batch() -> None:
    backlog = _Backlog(limit=100)
    await fill(backlog, "a", "b", "c")
    assert await take(backlog, 2, window_s=0) == ["a", "b"]
    await fill(backlog, "d")
    assert await take(backlog, 2, window_s=0) == ["c", "d"]


async def test_reading_waits_at_the_limit_until_a_batch_is_taken() -> None:
    backlog = _Backlog(limit=3)
    await fill(backlog, "a", "b")
    adding = asyncio.ensure_future(fill(backlog, "c"))
    await asyncio.sleep(0.05)
    assert not adding.done()  # the third is in, but the reader waits for room
    assert await take(backlog, 2, window_s=0) == ["a", "b"]
    await asyncio.wait_for(adding, 5)
    assert await take(backlog, 2, window_s=0) == ["c"]


async def test_a_batch_taken_while_behind_waits_to_fill_however_long_the_oldest_waited() -> None:
    backlog = _Backlog(limit=100)
    await fill(backlog, "a")
    await asyncio.sleep(0.5)  # longer than the window: caught up, "a" would go alone now
    taking = asyncio.ensure_future(take(backlog, 3, window_s=0.4, from_now=True))
    await asyncio.sleep(0)
    await fill(backlog, "b", "c")
    assert await asyncio.wait_for(taking, 5) == ["a", "b", "c"]
