"""HTTP API of the meter public keys registered per station (OCMF signature verification)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field

from ..core.bounds import INT4_MAX
from ..invoicing.meter_key_store import MeterKeyStore
from ..invoicing.meter_keys import MeterKey, MeterKeyError
from .access_guard import actor_of
from .inputs import Text
from .paging import AFTER, PAGED, page


class MeterKeyIn(BaseModel):
    public_key: Text = Field(
        min_length=1,
        max_length=4096,
        description="The meter's public key, EC on a curve OCMF uses: DER SubjectPublicKeyInfo,"
        " or the bare point (04||X||Y, or X||Y), as hex or base64, or PEM; whitespace is"
        " ignored. Stored as hex DER.",
    )
    meter_serial: Text | None = Field(
        None,
        max_length=100,
        description="The meter's serial (OCMF MS) the key belongs to; absent: any meter of the"
        " station.",
    )


class MeterKeyOut(BaseModel):
    station_id: str
    revision: int
    meter_serial: str | None
    public_key: Text = Field(description="DER SubjectPublicKeyInfo, lower-case hex.")
    valid_from: datetime = Field(description="Sessions starting from then are verified with it.")
    registered_at: datetime


def _out(key: MeterKey) -> MeterKeyOut:
    return MeterKeyOut(**key.__dict__)


def meter_keys_router(store: MeterKeyStore) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["stations"])

    @router.post("/stations/{station_id}/meter-keys", status_code=201)
    async def register_meter_key(
        station_id: str, body: MeterKeyIn, request: Request
    ) -> MeterKeyOut:
        """Register a meter public key for the station. Its signed meter values are verified
        with it from sessions starting now on (never earlier ones, so a replay verifies alike);
        a key for a meter serial comes before one for the whole station, and the newest wins."""
        try:
            key = await store.register(
                station_id, body.public_key, body.meter_serial, actor=actor_of(request)
            )
        except MeterKeyError as exc:
            raise HTTPException(422, f"public_key: {exc}") from None
        return _out(key)

    @router.get("/stations/{station_id}/meter-keys", responses=PAGED)
    async def list_meter_keys(
        request: Request,
        response: Response,
        station_id: str,
        after: int | None = Query(
            None, ge=0, le=INT4_MAX, description=AFTER + " The last revision of a page."
        ),
        limit: int = Query(1000, ge=1, le=10000),
    ) -> list[MeterKeyOut]:
        """Every key registered for the station, oldest first."""
        keys = [k for k in await store.keys(station_id) if after is None or k.revision > after]
        return [_out(k) for k in page(keys, limit, lambda k: str(k.revision), request, response)]

    return router
