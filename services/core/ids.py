"""The one rule for station ids, used by the gateway, the API (registry) and the CLI.

A station id is the last segment of the station's URL (``/ocpp/{station_id}``) and of the API's
(``/api/v1/stations/{station_id}``): 1-48 printable ASCII characters (OCPP 1.6 chargeBoxIdentity
is a CiString48) that mean nothing special in a URL path, so every tool addresses the same
station: no ``/``, ``?``, ``#`` or ``%``, and not ``.`` or ``..`` (which clients fold away).
"""

from __future__ import annotations

import re

STATION_ID = re.compile(r"[\x21\x22\x24\x26-\x2e\x30-\x3e\x40-\x7e]{1,48}")
STATION_ID_RULE = "1-48 printable ASCII characters without / ? # % (and not . or ..)"


def is_station_id(value: str) -> bool:
    return STATION_ID.fullmatch(value) is not None and value not in (".", "..")
