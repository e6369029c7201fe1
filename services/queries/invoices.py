"""Invoices and credit notes: one, a page, the exports' rows, totals per currency."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from .stations import Fetch, Row

Stream = Callable[..., AsyncIterator[Row]]


def stopped_between(
    column: str, from_: date | None, to: date | None
) -> tuple[str, tuple[datetime | None, ...]]:
    """The SQL condition (and its parameters) for documents whose session stopped on or after
    the UTC day ``from_`` and before the day ``to``; either may be absent."""
    start = datetime.combine(from_, time(), tzinfo=UTC) if from_ else None
    end = datetime.combine(to, time(), tzinfo=UTC) if to else None
    where = (
        f"(%s::timestamptz IS NULL OR {column} >= %s)"
        f" AND (%s::timestamptz IS NULL OR {column} < %s)"
    )
    return where, (start, start, end, end)


@dataclass(frozen=True)
class DocumentFilter:
    """Which invoices and credit notes a list or its totals cover; None: any."""

    station_id: str | None = None
    document_type: str | None = None
    from_: date | None = None
    to: date | None = None

    def where(self) -> tuple[str, tuple[Any, ...]]:
        """The SQL condition on ``invoices`` and its parameters."""
        stopped, bounds = stopped_between("stopped_at", self.from_, self.to)
        return (
            "(%s::text IS NULL OR station_id = %s)"
            f" AND (%s::text IS NULL OR document_type = %s) AND {stopped}",
            (self.station_id, self.station_id, self.document_type, self.document_type, *bounds),
        )


async def document(fetch: Fetch, invoice_number: str) -> Row | None:
    rows = await fetch("SELECT * FROM invoices WHERE invoice_number = %s", invoice_number)
    return rows[0] if rows else None


async def documents_page(
    fetch: Fetch, which: DocumentFilter, session_id: str | None, after: str | None, limit: int
) -> list[Row]:
    """Documents by number, after ``after``."""
    where, params = which.where()
    return await fetch(
        "SELECT * FROM invoices WHERE (%s::text IS NULL OR session_id = %s)"
        f" AND {where} AND (%s::text IS NULL OR invoice_number > %s)"
        " ORDER BY invoice_number LIMIT %s",
        session_id,
        session_id,
        *params,
        after,
        after,
        limit,
    )


async def totals(fetch: Fetch, which: DocumentFilter) -> list[Row]:
    """Per currency: documents, credit notes, energy and the three totals."""
    where, params = which.where()
    return await fetch(
        "SELECT currency, count(*) AS documents,"
        " count(*) FILTER (WHERE document_type = 'credit_note') AS credit_notes,"
        " coalesce(sum(energy_wh), 0)::bigint AS energy_wh,"
        " sum(total_excl_vat) AS total_excl_vat, sum(total_vat) AS total_vat,"
        f" sum(total_incl_vat) AS total_incl_vat FROM invoices WHERE {where}"
        " GROUP BY currency ORDER BY currency",
        *params,
    )


def _cdr_range(
    from_: date | None, to: date | None, after: str | None
) -> tuple[str, tuple[Any, ...]]:
    where, dates = stopped_between("d.stopped_at", from_, to)
    return (
        where + " AND (%s::text IS NULL OR d.invoice_number > %s)",
        (*dates, after, after),
    )


async def cdr_page_end(
    fetch: Fetch, from_: date | None, to: date | None, after: str | None, limit: int
) -> list[Row]:
    """The number of a CDR page's last document, and of the one after it if there is one."""
    where, params = _cdr_range(from_, to, after)
    return await fetch(
        f"SELECT d.invoice_number FROM invoices d WHERE {where}"
        " ORDER BY d.invoice_number OFFSET %s LIMIT 2",
        *params,
        limit - 1,
    )


def cdrs(
    stream: Stream, from_: date | None, to: date | None, after: str | None, last: str | None
) -> AsyncIterator[Row]:
    """Each document's CDR (a credit note's: the CDR of the invoice it cancels, as
    ``cancelled_cdr``), by number, up to ``last`` (None: to the end)."""
    where, params = _cdr_range(from_, to, after)
    return stream(
        "SELECT d.invoice_number, d.cdr, c.cdr AS cancelled_cdr FROM invoices d"
        " LEFT JOIN invoices c ON d.document_type = 'credit_note'"
        f" AND c.invoice_number = d.cancels WHERE {where}"
        " AND (%s::text IS NULL OR d.invoice_number <= %s) ORDER BY d.invoice_number",
        *params,
        last,
        last,
    )


def documents_stopped(stream: Stream, from_: date | None, to: date | None) -> AsyncIterator[Row]:
    """Every document whose session stopped in the range, by number."""
    where, params = stopped_between("stopped_at", from_, to)
    return stream(f"SELECT * FROM invoices WHERE {where} ORDER BY invoice_number", *params)


async def cdr_of(fetch: Fetch, invoice_number: str) -> Row | None:
    """A document's CDR, type and the invoice it cancels."""
    rows = await fetch(
        "SELECT cdr, document_type, cancels FROM invoices WHERE invoice_number = %s",
        invoice_number,
    )
    return rows[0] if rows else None


async def session_figures(fetch: Fetch, session_id: str) -> Row | None:
    """What an invoice's evidence shows of its session, with the positions of its frames."""
    rows = await fetch(
        "SELECT session_id, revision, status, energy_wh, meter_start_wh, meter_stop_wh,"
        " started_at, stopped_at, flags, frame_positions FROM sessions WHERE session_id = %s",
        session_id,
    )
    return rows[0] if rows else None
