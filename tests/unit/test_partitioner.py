"""The log's partitioner is Kafka's: every adapter, and Kafka itself, puts a station's records in
the same partition."""

from __future__ import annotations

from aiokafka.partitioner import murmur2 as kafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from chargeledger.core.log_port import murmur2, partition_for


@given(st.binary(max_size=64))
def test_murmur2_is_kafkas(data: bytes) -> None:
    assert murmur2(data) & 0x7FFFFFFF == kafka_murmur2(data) & 0x7FFFFFFF
    assert murmur2(data) & 0xFFFFFFFF == kafka_murmur2(data) & 0xFFFFFFFF


def test_known_station_ids_keep_their_partitions() -> None:
    # The partitions these ids had under aiokafka's partitioner: a log written before keeps
    # each station's order.
    ids = ["CP-0001", "CP-DEMO", "station-a", "", "Ω-Δ", "A" * 200]
    expected = [(kafka_murmur2(i.encode()) & 0x7FFFFFFF) % 8 for i in ids]
    assert [partition_for(i, 8) for i in ids] == expected
