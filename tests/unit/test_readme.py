"""The README's tables of OCPP messages say what the gateway does: they cannot drift from it."""

from __future__ import annotations

import re

import pytest

from chargeledger.gateway.actions import COMMAND_ACTIONS, STATION_ACTIONS
from tests.support import REPO

TITLES = {
    "ocpp1.6": "### OCPP 1.6 (`ocpp1.6`)",
    "ocpp2.0.1": "### OCPP 2.0.1 (`ocpp2.0.1`)",
    "ocpp2.1": "### OCPP 2.1 (`ocpp2.1`)",
}


def section(version: str) -> str:
    text = (REPO / "README.md").read_text()
    start = text.index(TITLES[version])
    end = text.find("\n#", start + len(TITLES[version]))
    return text[start:end]


@pytest.mark.parametrize("version", TITLES)
def test_the_readme_lists_every_station_message_and_command(version: str) -> None:
    text = section(version)
    rows = set(re.findall(r"^\| `(\w+)` \|", text, re.MULTILINE))
    assert rows == STATION_ACTIONS[version]
    [commands] = re.findall(r"^Commands \(ChargeLedger → station\): (.*)\.$", text, re.MULTILINE)
    assert set(re.findall(r"`(\w+)`", commands)) == COMMAND_ACTIONS[version]
