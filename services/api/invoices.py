"""Invoices and credit notes over HTTP: one by one, as CSV for accounting, as a printable page."""

from __future__ import annotations

import csv
import html
import io
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from ..invoicing.cdr_json import credit_cdr
from ..invoicing.signed_data import transaction_entries, write_xml
from ..queries import invoices as queries
from ..queries.frames import Frames
from ..queries.invoices import DocumentFilter, Stream
from .inputs import Day
from .paging import AFTER, PAGED, next_headers
from .session_detail import SessionFrame, frames_of

Fetch = Callable[..., Awaitable[list[dict[str, Any]]]]
# Rows of a query read from a server-side cursor, a batch at a time.
_CHUNK_CHARS = 64 * 1024  # an export is sent in pieces of about this size
_NO_DOCUMENT: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such invoice or credit note."}
}

# One row per invoice line; documented in docs/exports.md.
CSV_COLUMNS = (
    "invoice_number",
    "document_type",
    "cancels",
    "replaces",
    "issued_for_session",
    "station_id",
    "connector_id",
    "id_tag",
    "started_at",
    "stopped_at",
    "energy_wh",
    "currency",
    "line",
    "description",
    "quantity",
    "unit",
    "unit_price_excl_vat",
    "vat_rate_percent",
    "amount_excl_vat",
    "vat_amount",
    "amount_incl_vat",
    "signature_status",
)


class InvoiceLine(BaseModel):
    description: str
    quantity: str
    unit: str
    unit_price_excl_vat: str
    vat_rate_percent: str
    amount_excl_vat: str
    vat_amount: str
    amount_incl_vat: str


class Invoice(BaseModel):
    invoice_number: str
    session_id: str
    station_id: str
    connector_id: int
    transaction_id: int | None
    transaction_ref: str
    id_tag: str | None
    started_at: datetime
    stopped_at: datetime
    meter_start_wh: int | None
    meter_stop_wh: int | None = Field(description="None: no register reading at the end.")
    energy_wh: int
    tariff_id: str
    currency: str
    lines: list[InvoiceLine]
    total_excl_vat: str
    total_vat: str
    total_incl_vat: str
    source_event_id: str
    document_type: Literal["invoice", "credit_note"]
    cancels: str | None = Field(description="Credit note: the invoice it cancels.")
    replaces: str | None = Field(description="Invoice: the invoice it replaces.")
    signature_status: Literal["verified", "unverified", "invalid", "none"] = Field(
        description="The session's signed meter values (OCMF), checked against the meter's key"
        " (invalid only on a session a reviewer released)."
    )
    signed_energy_wh: int | None = Field(
        description="Energy between the signed begin and end readings, when both were signed."
    )
    log_position: str


class SessionFigures(BaseModel):
    session_id: str
    revision: int = Field(description="The session as the ledger holds it now.")
    status: str
    energy_wh: int
    meter_start_wh: int | None
    meter_stop_wh: int | None
    started_at: datetime
    stopped_at: datetime | None
    flags: list[str]


class EvidenceFrame(SessionFrame):
    """A frame behind a document's figures."""


class Evidence(BaseModel):
    invoice: Invoice
    session: SessionFigures
    frames: list[EvidenceFrame]


class Totals(BaseModel):
    currency: str
    documents: int
    credit_notes: int
    energy_wh: int
    total_excl_vat: str
    total_vat: str
    total_incl_vat: str


def document_filter(
    station_id: str | None = Query(None, description="Only documents of this station."),
    document_type: Literal["invoice", "credit_note"] | None = Query(None),
    from_: Annotated[
        Day | None,
        Query(alias="from", description="Sessions stopped on or after this UTC day."),
    ] = None,
    to: Annotated[Day | None, Query(description="Sessions stopped before this UTC day.")] = None,
) -> DocumentFilter:
    return DocumentFilter(station_id, document_type, from_, to)


def invoice_out(row: dict[str, Any]) -> Invoice:
    return Invoice(
        **{
            **row,
            "total_excl_vat": str(row["total_excl_vat"]),
            "total_vat": str(row["total_vat"]),
            "total_incl_vat": str(row["total_incl_vat"]),
        },
        log_position=f"{row['stream']}/{row['partition']}/{row['offset']}",
    )


async def _chunks(pieces: AsyncIterator[str]) -> AsyncIterator[str]:
    """``pieces`` joined into chunks of about _CHUNK_CHARS."""
    buffered: list[str] = []
    size = 0
    async for piece in pieces:
        buffered.append(piece)
        size += len(piece)
        if size >= _CHUNK_CHARS:
            yield "".join(buffered)
            buffered, size = [], 0
    if buffered:
        yield "".join(buffered)


def _csv_rows(document: Invoice) -> Iterable[tuple[Any, ...]]:
    for n, line in enumerate(document.lines, start=1):
        yield (
            document.invoice_number,
            document.document_type,
            document.cancels or "",
            document.replaces or "",
            document.session_id,
            document.station_id,
            document.connector_id,
            document.id_tag or "",
            document.started_at.isoformat(),
            document.stopped_at.isoformat(),
            document.energy_wh,
            document.currency,
            n,
            line.description,
            line.quantity,
            line.unit,
            line.unit_price_excl_vat,
            line.vat_rate_percent,
            line.amount_excl_vat,
            line.vat_amount,
            line.amount_incl_vat,
            document.signature_status,
        )


def invoices_router(fetch: Fetch, stream: Stream, frames: Frames) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["invoices"])

    async def row(invoice_number: str) -> dict[str, Any]:
        found = await queries.document(fetch, invoice_number)
        if found is None:
            raise HTTPException(404, f"no invoice or credit note {invoice_number!r}")
        return found

    async def one(invoice_number: str) -> Invoice:
        return invoice_out(await row(invoice_number))

    @router.get(
        "/cdrs",
        response_class=StreamingResponse,
        responses={
            200: {
                "description": "An OCPI 2.2.1 JSON array of CDRs.",
                "content": {"application/json": {"schema": {"type": "array", "items": {}}}},
                "headers": PAGED[200]["headers"],
            }
        },
    )
    async def cdrs(
        request: Request,
        from_: Annotated[
            Day | None, Query(alias="from", description="Stopped on or after (UTC).")
        ] = None,
        to: Annotated[Day | None, Query(description="Stopped before this day (UTC).")] = None,
        after: str | None = Query(None, description=AFTER + " The last invoice_number of a page."),
        limit: int | None = Query(
            None, ge=1, le=100_000, description="At most this many documents; default: all."
        ),
    ) -> StreamingResponse:
        """Every CDR as an OCPI 2.2.1 JSON array, in document-number order: the CDR of each
        invoice and the Credit CDR of each credit note, numbers exact (docs/exports.md).
        Streamed as it is read, so any range can be exported at once."""
        headers: dict[str, str] = {}
        last: str | None = None
        if limit is not None:
            # The page's last document, and whether another follows it.
            ends = await queries.cdr_page_end(fetch, from_, to, after, limit)
            if ends:
                last = str(ends[0]["invoice_number"])
            if last is not None and len(ends) == 2:
                headers = next_headers(request, last)
        # Up to the page's last document; with none, fewer than ``limit`` remain: all of them.
        rows = queries.cdrs(stream, from_, to, after, last)

        async def documents() -> AsyncIterator[str]:
            yield "["
            first = True
            async for row in rows:
                document = row["cdr"] or (
                    credit_cdr(row["cancelled_cdr"], row["invoice_number"])
                    if row["cancelled_cdr"]
                    else None
                )
                if document:
                    yield document if first else ",\n" + document
                    first = False
            yield "]\n"

        return StreamingResponse(
            _chunks(documents()), media_type="application/json", headers=headers
        )

    @router.get(
        "/invoices.csv",
        response_class=StreamingResponse,
        responses={
            200: {
                "description": "One row per document line (docs/exports.md).",
                "content": {"text/csv": {"schema": {"type": "string"}}},
            }
        },
    )
    async def invoices_csv(
        from_: Annotated[
            Day | None, Query(alias="from", description="Stopped on or after (UTC).")
        ] = None,
        to: Annotated[Day | None, Query(description="Stopped before this day (UTC).")] = None,
    ) -> StreamingResponse:
        """Every invoice and credit note line, for accounting (columns: docs/exports.md).
        Streamed as it is read, so any range can be exported at once."""
        rows = queries.documents_stopped(stream, from_, to)

        async def lines() -> AsyncIterator[str]:
            out = io.StringIO()
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(CSV_COLUMNS)
            yield out.getvalue()
            async for row in rows:
                out.seek(0)
                out.truncate()
                writer.writerows(_csv_rows(invoice_out(row)))
                yield out.getvalue()

        return StreamingResponse(_chunks(lines()), media_type="text/csv; charset=utf-8")

    @router.get(
        "/invoices/{invoice_number}/cdr",
        response_class=Response,
        responses={
            200: {
                "description": "OCPI 2.2.1 CDR JSON.",
                "content": {"application/json": {"schema": {"type": "object"}}},
            },
            **_NO_DOCUMENT,
        },
    )
    async def invoice_cdr(invoice_number: str) -> Response:
        """The priced OCPI 2.2.1 CDR the invoice was made from, as issued; for a credit note,
        the Credit CDR of the invoice it cancels (``credit``: true, ``credit_reference_id``,
        ``total_cost`` negated)."""
        row = await queries.cdr_of(fetch, invoice_number)
        if row is None:
            raise HTTPException(404, f"no invoice or credit note {invoice_number!r}")
        if not row["cdr"] and row["document_type"] == "credit_note" and row["cancels"]:
            cancelled = await queries.cdr_of(fetch, row["cancels"])
            if cancelled and cancelled["cdr"]:
                return Response(
                    credit_cdr(cancelled["cdr"], invoice_number), media_type="application/json"
                )
        if not row["cdr"]:
            raise HTTPException(
                404, f"{invoice_number} has no CDR (issued before invoices carried their CDR)"
            )
        return Response(row["cdr"], media_type="application/json")

    @router.get(
        "/invoices/{invoice_number}.html",
        response_class=Response,
        responses={
            200: {"content": {"text/html": {"schema": {"type": "string"}}}},
            **_NO_DOCUMENT,
        },
    )
    async def invoice_html(invoice_number: str) -> Response:
        """The document as a page a customer can read and check."""
        found = await row(invoice_number)
        page = render_html(invoice_out(found), signed_data=bool(found.get("signed_values")))
        return Response(page, media_type="text/html")

    @router.get(
        "/invoices/{invoice_number}/signed-data.xml",
        response_class=Response,
        responses={
            200: {"content": {"application/xml": {"schema": {"type": "string"}}}},
            404: {"description": "No such document, or it has no signed meter values."},
        },
    )
    async def signed_data_xml(invoice_number: str) -> Response:
        """The signed meter values (OCMF) the invoice was checked with, each with its key, in
        the XML format of the S.A.F.E. transparency software, for the customer to check the
        bill there (or with ``chargeledger ocmf verify``)."""
        found = await row(invoice_number)
        values = found.get("signed_values") or []
        if not values:
            if found["document_type"] == "credit_note":
                detail = f"{invoice_number} is a credit note; the invoice it cancels,"
                detail += f" {found['cancels']}, has the signed meter values"
            else:
                detail = f"{invoice_number} has no signed meter values"
            raise HTTPException(404, detail)
        # The software wants an integer transaction id: the OCPP 1.6 one, else the number's.
        number = found["transaction_id"]
        if number is None:
            number = int("".join(c for c in invoice_number if c.isdigit()) or "0")
        entries = transaction_entries(
            [(v["record"], v.get("public_key")) for v in values], str(number)
        )
        return Response(
            write_xml(entries),
            media_type="application/xml",
            headers={
                "Content-Disposition": f'attachment; filename="{invoice_number}-signed-data.xml"'
            },
        )

    @router.get(
        "/invoices/{invoice_number}/evidence",
        response_model=Evidence,
        responses={404: {"description": "No such document, or its session is not known."}},
    )
    async def evidence(invoice_number: str) -> Evidence:
        """The chain behind a document: invoice → session → every OCPP frame that made the
        session's figures, each with its log position, so an auditor can check each figure."""
        document = await one(invoice_number)
        session = await queries.session_figures(fetch, document.session_id)
        if session is None:
            raise HTTPException(404, f"the session of {invoice_number!r} is not in the ledger")
        shown = await frames_of(frames, session["frame_positions"])
        return Evidence(
            invoice=document,
            session=SessionFigures(**{k: v for k, v in session.items() if k != "frame_positions"}),
            frames=[EvidenceFrame(**f.model_dump()) for f in shown],
        )

    @router.get("/invoices/totals", response_model=list[Totals])
    async def totals(
        documents: Annotated[DocumentFilter, Depends(document_filter)],
    ) -> list[Totals]:
        """Totals per currency of the documents the same filters list (credit notes count
        with their negative amounts)."""
        rows = await queries.totals(fetch, documents)
        return [
            Totals(
                **{
                    **r,
                    **{k: str(r[k]) for k in ("total_excl_vat", "total_vat", "total_incl_vat")},
                }
            )
            for r in rows
        ]

    @router.get("/invoices/{invoice_number}", response_model=Invoice, responses=_NO_DOCUMENT)
    async def get_invoice(invoice_number: str) -> Invoice:
        return await one(invoice_number)

    return router


def _signed(doc: Invoice) -> str:
    if doc.signature_status == "none":
        return "Signed meter values: none were sent with this session."
    energy = (
        f", {doc.signed_energy_wh} Wh between the signed readings"
        if doc.signed_energy_wh is not None
        else ""
    )
    return f"Signed meter values: {doc.signature_status}{energy}."


def _signed_link(doc: Invoice) -> str:
    href = html.escape(f"{quote(doc.invoice_number, safe='')}/signed-data.xml")
    return (
        f'\n<p><a href="{href}">Signed meter values and keys</a> (XML), to check this invoice'
        " with the transparency software of S.A.F.E. e.V. or with"
        " <code>chargeledger ocmf verify</code>.</p>"
    )


def _hours(start: datetime, end: datetime) -> str:
    minutes = (end - start) // timedelta(minutes=1)
    return f"{minutes // 60} h {minutes % 60:02d} min"


def render_html(doc: Invoice, *, signed_data: bool = False) -> str:
    """What a customer is entitled to check (Eichrecht): times, meter readings, energy, and,
    with ``signed_data``, a link to the signed meter values for the transparency software."""
    e = html.escape
    title = "Credit note" if doc.document_type == "credit_note" else "Invoice"
    relation = ""
    if doc.cancels:
        relation = f"<p>Cancels invoice {e(doc.cancels)}.</p>"
    if doc.replaces:
        relation = f"<p>Replaces invoice {e(doc.replaces)}, cancelled by a credit note.</p>"
    rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{e(v)}</td>"
            for v in (
                line.description,
                f"{line.quantity} {line.unit}",
                line.unit_price_excl_vat,
                f"{line.vat_rate_percent} %" if line.vat_rate_percent else "no VAT",
                line.amount_excl_vat,
                line.vat_amount,
                line.amount_incl_vat,
            )
        )
        + "</tr>"
        for line in doc.lines
    )
    link = _signed_link(doc) if signed_data else ""
    meter_start = "-" if doc.meter_start_wh is None else f"{doc.meter_start_wh} Wh"
    meter_stop = "-" if doc.meter_stop_wh is None else f"{doc.meter_stop_wh} Wh"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} {e(doc.invoice_number)}</title></head>
<body>
<h1>{title} {e(doc.invoice_number)}</h1>
{relation}
<h2>Charging session</h2>
<table>
<tr><th>Station, connector</th><td>{e(doc.station_id)}, {doc.connector_id}</td></tr>
<tr><th>Identification</th><td>{e(doc.id_tag or "-")}</td></tr>
<tr><th>Start (UTC)</th><td>{doc.started_at.isoformat()}</td></tr>
<tr><th>End (UTC)</th><td>{doc.stopped_at.isoformat()}</td></tr>
<tr><th>Duration</th><td>{_hours(doc.started_at, doc.stopped_at)}</td></tr>
<tr><th>Meter reading at start</th><td>{meter_start}</td></tr>
<tr><th>Meter reading at end</th><td>{meter_stop}</td></tr>
<tr><th>Energy</th><td>{doc.energy_wh} Wh</td></tr>
<tr><th>Tariff</th><td>{e(doc.tariff_id or "-")}</td></tr>
</table>
<h2>Charges ({e(doc.currency)})</h2>
<table>
<tr><th>Item</th><th>Quantity</th><th>Unit price excl. VAT</th><th>VAT</th>
<th>Amount excl. VAT</th><th>VAT amount</th><th>Amount incl. VAT</th></tr>
{rows}
<tr><th colspan="4">Total</th><td>{e(doc.total_excl_vat)}</td><td>{e(doc.total_vat)}</td>
<td>{e(doc.total_incl_vat)}</td></tr>
</table>
<p>{_signed(doc)}</p>{link}
<p>Derived from {e(doc.source_event_id)}, log position {e(doc.log_position)}.</p>
</body></html>
"""
