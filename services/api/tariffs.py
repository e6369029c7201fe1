"""HTTP API of tariffs (OCPI 2.2.1 Tariff JSON, in and out with exact numbers) and assignments."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import AwareDatetime, BaseModel, Field

from ..invoicing.cdr_json import dumps
from ..invoicing.tariffs import Assignment, TariffError, TariffStore


class TariffSummary(BaseModel):
    tariff_id: str
    revision: int
    currency: str
    valid_from: datetime
    valid_to: datetime | None
    put_at: datetime


class AssignmentIn(BaseModel):
    tariff_id: str
    station_id: str | None = Field(None, description="Absent: the default for every station.")
    evse_id: int | None = None
    connector_id: int | None = Field(None, description="With station_id: only this connector.")
    valid_from: AwareDatetime | None = Field(None, description="Default: now.")
    valid_to: AwareDatetime | None = None


class AssignmentOut(BaseModel):
    assignment_id: int
    tariff_id: str
    station_id: str | None
    evse_id: int | None
    connector_id: int | None
    valid_from: datetime
    valid_to: datetime | None
    assigned_at: datetime


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

    @router.put("/tariffs/{tariff_id}", responses={200: {}, 201: {}})
    async def put_tariff(tariff_id: str, request: Request) -> Response:
        """Store an OCPI 2.2.1 Tariff (JSON body) as the tariff's next version: 201 when it is
        new, 200 when it is the same as the current version. Numbers are kept exactly."""
        try:
            document = json.loads(await request.body(), parse_float=Decimal)
        except ValueError as exc:
            raise HTTPException(400, f"the body is not JSON: {exc}") from None
        if not isinstance(document, dict):
            raise HTTPException(422, "the body must be an OCPI Tariff object")
        try:
            stored, new = await store.put(tariff_id, document)
        except TariffError as exc:
            raise HTTPException(exc.status, str(exc)) from None
        return _json(stored.document, stored.revision, 201 if new else 200)

    @router.get("/tariffs/{tariff_id}")
    async def get_tariff(
        tariff_id: str, revision: int | None = Query(None, ge=1, description="Default: newest.")
    ) -> Response:
        """The tariff as OCPI 2.2.1 Tariff JSON."""
        stored = await store.version(tariff_id, revision)
        if stored is None:
            raise HTTPException(
                404, f"no tariff {tariff_id!r}" + (f" revision {revision}" if revision else "")
            )
        return _json(stored.document, stored.revision)

    @router.get("/tariffs", response_model=list[TariffSummary])
    async def list_tariffs() -> list[TariffSummary]:
        """The newest version of every tariff."""
        return [
            TariffSummary(
                tariff_id=t.tariff_id,
                revision=t.revision,
                currency=str(t.document.get("currency")),
                valid_from=t.valid_from,
                valid_to=t.valid_to,
                put_at=t.put_at,
            )
            for t in await store.latest()
        ]

    @router.post("/tariff-assignments", status_code=201, response_model=AssignmentOut)
    async def assign(body: AssignmentIn) -> AssignmentOut:
        """Assign a tariff to a connector, a station, or as the default, from a time on."""
        try:
            return _assignment(await store.assign(**body.model_dump()))
        except TariffError as exc:
            raise HTTPException(exc.status, str(exc)) from None

    @router.get("/tariff-assignments", response_model=list[AssignmentOut])
    async def assignments() -> list[AssignmentOut]:
        return [_assignment(a) for a in await store.assignments()]

    return router
