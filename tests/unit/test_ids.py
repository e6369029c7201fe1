"""One station-id rule for the gateway, the registry (API) and the CLI."""

from __future__ import annotations

import pytest

from chargeledger.core.ids import is_station_id
from chargeledger.registry.store import RegistryError, check_station_id


@pytest.mark.parametrize("station_id", ["CP-1", "DE*ABC*E1234", "cp.01:a_b@c+d|e=f", "x" * 48])
def test_ids_stations_use_are_taken_everywhere(station_id: str) -> None:
    assert is_station_id(station_id)
    check_station_id(station_id)  # the registry takes it


@pytest.mark.parametrize(
    "station_id", ["", ".", "..", "A?B", "A#B", "A%B", "A/B", "CP 1", "CP\x00", "ü", "x" * 49]
)
def test_ids_a_url_cannot_carry_as_they_are_are_refused_everywhere(station_id: str) -> None:
    assert not is_station_id(station_id)
    with pytest.raises(RegistryError, match="printable ASCII characters without / \\? # %"):
        check_station_id(station_id)
