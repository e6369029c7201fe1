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


def test_an_entry_is_decoded_once_while_held_and_the_oldest_make_room_first() -> None:
    cache = DecodeCache(3)
    values = [entry(n) for n in range(5)]
    first = [cache.decode(v) for v in values[:3]]
    # The same bytes read by another processor (another object): the same event, not decoded.
    assert all(cache.decode(bytes(v)) is e for v, e in zip(values[:3], first, strict=True))
    for v in values[3:]:
        cache.decode(v)  # pushes out entries 0 and 1, the oldest
    assert cache.decode(values[2]) is first[2]
    again = cache.decode(values[0])
    assert again == first[0] and again is not first[0]  # decoded anew
