"""HTTP API of tariffs (OCPI 2.2.1 Tariff JSON, in and out with exact numbers) and assignments."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field

from ..core.bounds import INT4_MAX
from ..core.meter import MAX_WH
from ..invoicing.cdr_json import DocumentError, dumps, time_zone
from ..invoicing.cdrs import preview_skeleton
from ..invoicing.invoices import invoice_lines
from ..invoicing.ocpi import Tariff
from ..invoicing.pricing import PricingError, price
from ..invoicing.tariff_store import TariffStore
from ..invoicing.tariffs import Assignment, TariffError, parse_tariff
from .access_guard import actor_of
from .guard import validation_error
from .inputs import Int4, JsonInputError, Moment, Text, load_json
from .paging import AFTER, PAGED, page

_MAX_PREVIEW_S = 7 * 24 * 3600


class TariffSummary(BaseModel):
    tariff_id: str
    revision: int
    currency: str
    valid_from: datetime
    valid_to: datetime | None
    put_at: datetime


class AssignmentIn(BaseModel):
    tariff_id: Text
    station_id: Text | None = Field(None, description="Absent: the default for every station.")
    evse_id: Int4 | None = None
    connector_id: Int4 | None = Field(None, description="With station_id: only this connector.")
    valid_from: Moment | None = Field(None, description="Default: now.")
    valid_to: Moment | None = None


class PreviewIn(BaseModel):
    energy_wh: int = Field(ge=0, le=MAX_WH)
    start: Moment = Field(description="When the session starts.")
    duration_s: int = Field(gt=0, le=_MAX_PREVIEW_S, description="Charging time, in seconds.")
    parking_s: int = Field(0, ge=0, le=_MAX_PREVIEW_S, description="Parking after charging.")
    time_zone: Text = Field("UTC", description="The station's IANA time zone.")
    revision: int | None = Field(None, ge=1, le=INT4_MAX, description="Default: newest.")


class PricedLine(BaseModel):
    dimension: str = Field(description="FLAT, ENERGY, TIME or PARKING_TIME.")
    start: datetime
    end: datetime
    quantity: str = Field(description="kWh, hours, or 1 for FLAT.")
    billed_quantity: str = Field(description="After the price component's step_size.")
    unit_price: str
    vat_percent: str | None
    cost_excl_vat: str
    cost_incl_vat: str
    element: int = Field(description="Index of the tariff element that priced it.")


class InvoiceLineOut(BaseModel):
    description: str
    quantity: str
    unit: str
    unit_price_excl_vat: str
    vat_rate_percent: str = Field(description="Empty: no VAT applies (not 0 %).")
    amount_excl_vat: str
    vat_amount: str
    amount_incl_vat: str


class PreviewOut(BaseModel):
    tariff_id: str
    revision: int
    currency: str
    invoice_lines: list[InvoiceLineOut] = Field(
        description="The lines an invoice of this session would have, rounded as it would be."
    )
    total_excl_vat: str = Field(description="As the invoice would total it.")
    total_vat: str
    total_incl_vat: str
    lines: list[PricedLine] = Field(description="Each priced piece, unrounded, by time.")


class AssignmentOut(BaseModel):
    assignment_id: int
    tariff_id: str
    station_id: str | None
    evse_id: int | None
    connector_id: int | None
    valid_from: datetime
    valid_to: datetime | None
    assigned_at: datetime


_REVISION_HEADER = {
    "X-Tariff-Revision": {"description": "The revision returned.", "schema": {"type": "integer"}}
}
# The document as stored: OCPI 2.2.1 Tariff JSON, with any fields OCPI adds kept as sent.
_DOCUMENT = {"application/json": {"schema": {"type": "object", "description": "OCPI Tariff"}}}


def _inline(schema: Any, defs: dict[str, Any]) -> Any:
    """``schema`` with its references to ``defs`` written out (OpenAPI resolves "$ref" from
    the document's root, where a model's own "$defs" are not)."""
    if isinstance(schema, dict):
        if "$ref" in schema:
            return _inline(defs[schema["$ref"].rsplit("/", 1)[1]], defs)
        return {k: _inline(v, defs) for k, v in schema.items() if k != "$defs"}
    if isinstance(schema, list):
        return [_inline(v, defs) for v in schema]
    return schema


_TARIFF_SCHEMA = Tariff.model_json_schema()
_TARIFF_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": _inline(_TARIFF_SCHEMA, _TARIFF_SCHEMA.get("$defs", {}))}
        },
    }
}


def _json(document: Any, revision: int, status_code: int = 200) -> Response:
    return Response(
        dumps(document),
        status_code,
        {"X-Tariff-Revision": str(revision)},
        media_type="application/json",
    )


def _assignment(a: Assignment) -> AssignmentOut:
    return AssignmentOut(**a.__dict__)


def tariffs_router(store: TariffStore) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["tariffs"])

    @router.put(
        "/tariffs/{tariff_id}",
        response_class=Response,
        openapi_extra=_TARIFF_BODY,
        responses={
            200: {
                "description": "The same as the current version: stored before.",
                "content": _DOCUMENT,
                "headers": _REVISION_HEADER,
            },
            201: {
                "description": "Stored as the next version.",
                "content": _DOCUMENT,
                "headers": _REVISION_HEADER,
            },
            400: {"description": "The body is not JSON."},
            422: {"description": "Not an OCPI 2.2.1 tariff this ledger can store; says why."},
        },
    )
    async def put_tariff(tariff_id: str, request: Request) -> Response:
        """Store an OCPI 2.2.1 Tariff (JSON body) as the tariff's next version: 201 when it is
        new, 200 when it is the same as the current version. Numbers are kept exactly."""
        try:
            document = load_json(await request.body(), parse_float=Decimal)
        except JsonInputError as exc:
            raise HTTPException(422, [validation_error(["body", *exc.loc], str(exc))]) from None
        except ValueError as exc:
            raise HTTPException(400, f"the body is not JSON: {exc}") from None
        if not isinstance(document, dict):
            raise HTTPException(422, "the body must be an OCPI Tariff object")
        try:
            stored, new = await store.put(tariff_id, document, actor=actor_of(request))
        except TariffError as exc:
            if exc.problems:  # each field that is wrong, where it is (FastAPI's own shape)
                detail = [validation_error(["body", *loc], msg) for loc, msg in exc.problems]
                raise HTTPException(exc.status, detail) from None
            raise HTTPException(exc.status, str(exc)) from None
        return _json(stored.document, stored.revision, 201 if new else 200)

    @router.get(
        "/tariffs/{tariff_id}",
        response_class=Response,
        responses={
            200: {"description": "OCPI 2.2.1 Tariff JSON.", "content": _DOCUMENT},
            404: {"description": "No such tariff (or revision)."},
        },
    )
    async def get_tariff(
        tariff_id: str,
        revision: int | None = Query(None, ge=1, le=INT4_MAX, description="Default: newest."),
    ) -> Response:
        """The tariff as OCPI 2.2.1 Tariff JSON."""
        stored = await store.version(tariff_id, revision)
        if stored is None:
            raise HTTPException(
                404, f"no tariff {tariff_id!r}" + (f" revision {revision}" if revision else "")
            )
        return _json(stored.document, stored.revision)

    @router.post(
        "/tariffs/{tariff_id}/preview",
        response_model=PreviewOut,
        responses={404: {"description": "No such tariff (or revision)."}},
    )
    async def preview(tariff_id: str, body: PreviewIn) -> PreviewOut:
        """Price a made-up session with the tariff, as an invoice would: the energy charged
        over ``duration_s`` from ``start``, then ``parking_s`` parked; the invoice's lines and
        totals, and each priced piece. Stores nothing."""
        stored = await store.version(tariff_id, body.revision)
        if stored is None:
            raise HTTPException(404, f"no tariff {tariff_id!r}")
        try:
            zone = time_zone(body.time_zone)
        except DocumentError as exc:
            raise HTTPException(422, [validation_error(["body", "time_zone"], str(exc))]) from None
        try:
            skeleton = preview_skeleton(
                body.start,
                body.energy_wh,
                timedelta(seconds=body.duration_s),
                timedelta(seconds=body.parking_s),
            )
            priced = price(skeleton, parse_tariff(stored.document), zone)
        except PricingError as exc:
            raise HTTPException(422, f"cannot price with {tariff_id!r}: {exc}") from None
        except OverflowError:
            where = validation_error(["body", "start"], "the session would end after the year 9999")
            raise HTTPException(422, [where]) from None
        invoiced = invoice_lines(priced)
        excl = sum((Decimal(line.amount_excl_vat) for line in invoiced), Decimal(0))
        vat = sum((Decimal(line.vat_amount) for line in invoiced), Decimal(0))
        return PreviewOut(
            tariff_id=tariff_id,
            revision=stored.revision,
            currency=priced.currency,
            invoice_lines=[InvoiceLineOut(**asdict(line)) for line in invoiced],
            total_excl_vat=str(excl),
            total_vat=str(vat),
            total_incl_vat=str(excl + vat),
            lines=[
                PricedLine(
                    dimension=line.dimension,
                    start=line.start,
                    end=line.end,
                    quantity=str(line.quantity),
                    billed_quantity=str(line.billed_quantity),
                    unit_price=str(line.unit_price),
                    vat_percent=None if line.vat_percent is None else str(line.vat_percent),
                    cost_excl_vat=str(line.cost.excl_vat),
                    cost_incl_vat=str(line.cost.incl_vat),
                    element=line.element,
                )
                for line in priced.lines
            ],
        )

    @router.get("/tariffs", response_model=list[TariffSummary], responses=PAGED)
    async def list_tariffs(
        request: Request,
        response: Response,
        after: str | None = Query(None, description=AFTER + " The last tariff_id of a page."),
        limit: int = Query(1000, ge=1, le=10000),
    ) -> list[TariffSummary]:
        """The newest version of every tariff, by tariff_id."""
        found = await store.latest(after=after, limit=limit + 1)
        return [
            TariffSummary(
                tariff_id=t.tariff_id,
                revision=t.revision,
                currency=str(t.document.get("currency")),
                valid_from=t.valid_from,
                valid_to=t.valid_to,
                put_at=t.put_at,
            )
            for t in page(found, limit, lambda t: t.tariff_id, request, response)
        ]

    @router.post(
        "/tariff-assignments",
        status_code=201,
        response_model=AssignmentOut,
        responses={404: {"description": "No such tariff: put it first."}},
    )
    async def assign(body: AssignmentIn, request: Request) -> AssignmentOut:
        """Assign a tariff to a connector, a station, or as the default, from a time on."""
        try:
            return _assignment(await store.assign(**body.model_dump(), actor=actor_of(request)))
        except TariffError as exc:
            raise HTTPException(exc.status, str(exc)) from None

    @router.get("/tariff-assignments", response_model=list[AssignmentOut], responses=PAGED)
    async def assignments(
        request: Request,
        response: Response,
        after: int | None = Query(
            None, ge=0, le=INT4_MAX, description=AFTER + " The last assignment_id of a page."
        ),
        limit: int = Query(1000, ge=1, le=10000),
    ) -> list[AssignmentOut]:
        """Every assignment, oldest first."""
        found = await store.assignments(after=after, limit=limit + 1)
        return [
            _assignment(a)
            for a in page(found, limit, lambda a: str(a.assignment_id), request, response)
        ]

    return router
