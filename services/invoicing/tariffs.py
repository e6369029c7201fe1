"""Tariffs and their assignments, as values, and the rule for which version prices a session.

A tariff is kept as every version it ever had (OCPI 2.2.1 Tariff JSON, numbers exact); an
assignment says which tariff applies to a connector, a station or by default, from when. Each is
an event on the log (``config.tariffs`` / ``config.tariff-assignments``); ``tariff_store`` writes
them. ``tariff_at`` is the rule for which version prices a session: pure, used live and on replay.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from ..core.events import TariffAssignment, TariffVersion
from .ocpi import Tariff


class TariffError(ValueError):
    """A tariff request that cannot be done; ``status`` is the HTTP status that says why."""

    def __init__(
        self,
        message: str,
        status: int = 422,
        problems: Sequence[tuple[tuple[str | int, ...], str]] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.problems = tuple(problems)  # (where in the document, what is wrong) of each field


@dataclass(frozen=True)
class StoredTariff:
    tariff_id: str
    revision: int
    document: dict[str, Any]  # numbers as Decimal
    valid_from: datetime
    valid_to: datetime | None
    put_at: datetime


@dataclass(frozen=True)
class Assignment:
    assignment_id: int
    tariff_id: str
    station_id: str | None
    evse_id: int | None
    connector_id: int | None
    valid_from: datetime
    valid_to: datetime | None
    assigned_at: datetime


def parse_tariff(document: dict[str, Any]) -> Tariff:
    try:
        return Tariff.model_validate(document)
    except ValidationError as exc:
        errors = exc.errors()
        where = ".".join(str(p) for p in errors[0]["loc"]) or "(document)"
        raise TariffError(
            f"not an OCPI 2.2.1 tariff: {where}: {errors[0]['msg']}",
            problems=[(tuple(e["loc"]), e["msg"]) for e in errors],
        ) from None


def tariff_at(
    at: datetime,
    station_id: str,
    evse_id: int | None,
    connector_id: int,
    assignments: Sequence[Assignment],
    versions: Sequence[StoredTariff],
    known_at: datetime | None = None,
) -> StoredTariff | None:
    """The tariff version that prices a session starting at ``at`` on this connector.

    The most specific assignment valid at ``at`` wins (this connector, then the station, then the
    default; among equals the one assigned last); of its tariff, the newest version valid then.
    With ``known_at`` (when the gateway received the start), only what was stored by then counts:
    ``at`` is the station's clock, and a station whose clock runs ahead must not let a tariff
    stored later apply to it, on a replay or to a later revision.
    """
    if known_at is not None:
        assignments = [a for a in assignments if a.assigned_at <= known_at]
        versions = [v for v in versions if v.put_at <= known_at]

    def specificity(a: Assignment) -> int:
        if a.station_id is None:
            return 0
        if a.connector_id is None:
            return 1
        return 2

    matching = [
        a
        for a in assignments
        if a.valid_from <= at
        and (a.valid_to is None or at < a.valid_to)
        and (a.station_id is None or a.station_id == station_id)
        and (a.connector_id is None or (a.connector_id == connector_id and a.evse_id == evse_id))
    ]
    if not matching:
        return None
    chosen = max(matching, key=lambda a: (specificity(a), a.assigned_at, a.assignment_id))
    candidates = [
        v
        for v in versions
        if v.tariff_id == chosen.tariff_id
        and v.valid_from <= at
        and (v.valid_to is None or at < v.valid_to)
    ]
    return max(candidates, key=lambda v: v.revision) if candidates else None


def version_of(event: TariffVersion) -> StoredTariff:
    """The version an event of ``config.tariffs`` stored."""
    return StoredTariff(
        tariff_id=event.tariff_id,
        revision=event.revision,
        document=json.loads(event.document, parse_float=Decimal),
        valid_from=event.valid_from,
        valid_to=event.valid_to,
        put_at=event.put_at,
    )


def assignment_of(event: TariffAssignment) -> Assignment:
    """The assignment an event of ``config.tariff-assignments`` stored."""
    return Assignment(
        event.assignment_id,
        event.tariff_id,
        event.station_id,
        event.evse_id,
        event.connector_id,
        event.valid_from,
        event.valid_to,
        event.assigned_at,
    )
