"""IANA time zones by name, with one clear error for a name that is not one."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class UnknownTimeZone(ValueError):
    pass


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "Europe" is a folder
        raise UnknownTimeZone(
            f"unknown time zone {name!r}: use an IANA name such as Europe/Stockholm"
        ) from None
