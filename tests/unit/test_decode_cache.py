"""The decoded events the processors of one stream share (``core.runtime.DecodeCache``)."""

from __future__ import annotations

from datetime import UTC, datetime

from chargeledger.core import codec
from chargeledger.core.events import ConnectionEvent
from chargeledger.core.runtime import DecodeCache


def entry(n: int) -> bytes:
    return codec.encode(
        ConnectionEvent(
            event_id=f"c1:{n}",
            station_id="CP-1",
            kind="OPENED",
            gateway_id="gw",
            connection_id="c1",
            occurred_at=datetime(2026, 12, 1, tzinfo=UTC),
            connection_seq=n,
        )
    )


def test_an_entry_is_decoded_once_for_its_readers_and_then_let_go() -> None:
    cache = DecodeCache(10)
    value = entry(0)
    first = cache.decode(value, readers=3)
    # The same bytes read by the other processors (another object): the same event.
    assert cache.decode(bytes(value), readers=3) is first
    assert cache.decode(bytes(value), readers=3) is first
    # All three have read it: nothing of it is kept (a fourth read, a batch redone, decodes).
    again = cache.decode(value, readers=3)
    assert again == first and again is not first


def test_a_reader_far_ahead_makes_the_oldest_entries_go_first() -> None:
    cache = DecodeCache(3)
    values = [entry(n) for n in range(5)]
    first = [cache.decode(v, readers=2) for v in values]  # pushes out entries 0 and 1
    assert cache.decode(bytes(values[2]), readers=2) is first[2]
    again = cache.decode(bytes(values[0]), readers=2)
    assert again == first[0] and again is not first[0]  # decoded anew


def test_what_one_reader_alone_reads_is_not_kept() -> None:
    cache = DecodeCache(10)
    value = entry(0)
    first = cache.decode(value, readers=1)
    assert cache.decode(value, readers=1) is not first
