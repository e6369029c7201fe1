"""One connection per station: the newest wins.

A station has one connection at a time. When it connects again (it lost its network and the old
connection is still open here, or a second device uses its id), the connection whose OPENED
event the log holds last is the station's; every older one is closed. Connection events are
keyed by station id, so a station's OPENED events are in one partition, ordered by offset,
whichever gateway appended them: every gateway reaches the same verdict from the log alone.
"""

from __future__ import annotations


class Succession:
    """The newest OPENED seen per station, and which of this gateway's connections it replaces.

    Fed with this gateway's own OPENED events as they are appended and with every gateway's as
    they are read back from ``ocpp.connections``, in any order and more than once.
    """

    def __init__(self) -> None:
        self._newest: dict[str, tuple[int, str]] = {}  # station -> (offset, connection id)
        self._held: dict[str, dict[str, int]] = {}  # station -> {local connection id: offset}

    def opened(self, station_id: str, connection_id: str, offset: int, *, here: bool) -> list[str]:
        """Note an OPENED at ``offset`` (``here``: of a connection this gateway holds); return
        this gateway's connections of the station that are now replaced, each once. That can be
        ``connection_id`` itself, when a newer one was seen before its own append returned."""
        newest = self._newest.get(station_id)
        if newest is None or offset > newest[0]:
            newest = self._newest[station_id] = (offset, connection_id)
        held = self._held.setdefault(station_id, {})
        if here:
            held[connection_id] = offset
        replaced = [c for c, o in held.items() if o < newest[0]]
        for c in replaced:
            del held[c]
        if not held:
            del self._held[station_id]
        return replaced

    def newest(self, station_id: str) -> str | None:
        """The id of the station's newest connection known here."""
        newest = self._newest.get(station_id)
        return newest[1] if newest else None

    def closed(self, station_id: str, connection_id: str) -> None:
        """One of this gateway's connections ended."""
        held = self._held.get(station_id)
        if held is not None:
            held.pop(connection_id, None)
            if not held:
                del self._held[station_id]
