"""HTTP API of the station and id-token registries."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field

from ..registry import store
from ..registry.store import Registry, RegistryError
from .access_guard import actor_of
from .inputs import Moment, Text
from .paging import AFTER, PAGED, page


class StationIn(BaseModel):
    station_id: Text = Field(description="The id stations use in ws://.../ocpp/{station_id}.")
    password: Text | None = Field(
        None, description="HTTP Basic auth password (16-40 characters); stored hashed only."
    )
    enabled: bool = True


class StationChange(BaseModel):
    enabled: bool | None = None
    password: Text | None = Field(None, description="A new password (16-40 characters).")
    remove_password: bool = False


class StationOut(BaseModel):
    station_id: str
    enabled: bool
    has_password: bool
    revision: int
    created_at: datetime
    updated_at: datetime


TokenStatus = Literal["Accepted", "Blocked", "Expired", "Invalid"]


class TokenIn(BaseModel):
    id_token: Text = Field(description="idTag (1.6) / idToken (2.x); matched case-insensitively.")
    status: TokenStatus = "Accepted"
    token_type: Text | None = Field(None, description="OCPP 2.x IdTokenEnumType, e.g. ISO14443.")
    expires_at: Moment | None = Field(
        None, description="After this, answered Expired (0001-01-02 to 9999-12-30 in UTC)."
    )
    group_id: Text | None = Field(None, description="Parent id tag (1.6) / group id token (2.x).")
    account_id: Text | None = Field(None, description="The account billed for this token.")


class TokenChange(BaseModel):
    status: TokenStatus | None = None
    token_type: Text | None = None
    expires_at: Moment | None = None
    group_id: Text | None = None
    account_id: Text | None = None


class TokenOut(BaseModel):
    id_token: str
    status: TokenStatus
    token_type: str | None
    expires_at: datetime | None
    group_id: str | None
    account_id: str | None
    revision: int
    updated_at: datetime


def _station_out(station: store.Station) -> StationOut:
    return StationOut(
        station_id=station.station_id,
        enabled=station.enabled,
        has_password=station.has_password,
        revision=station.revision,
        created_at=station.created_at,
        updated_at=station.updated_at,
    )


def _token_out(token: store.IdToken) -> TokenOut:
    return TokenOut(**token.__dict__)


def _http(exc: RegistryError) -> HTTPException:
    return HTTPException(exc.status, str(exc))


def registry_router(registry: Registry) -> APIRouter:
    router = APIRouter(prefix="/api/v1")

    @router.post(
        "/stations",
        status_code=201,
        response_model=StationOut,
        tags=["stations"],
        responses={409: {"description": "The station is registered already."}},
    )
    async def add_station(body: StationIn, request: Request) -> StationOut:
        """Register a station (409 if it is registered already)."""
        try:
            station = await registry.add_station(
                body.station_id,
                password=body.password,
                enabled=body.enabled,
                actor=actor_of(request),
            )
        except RegistryError as exc:
            raise _http(exc) from None
        return _station_out(station)

    @router.patch(
        "/stations/{station_id}",
        response_model=StationOut,
        tags=["stations"],
        responses={404: {"description": "No such station: add it first."}},
    )
    async def change_station(station_id: str, body: StationChange, request: Request) -> StationOut:
        """Enable or disable a station (disabled: BootNotification is answered Rejected),
        set or remove its password."""
        try:
            station = await registry.update_station(
                station_id,
                enabled=body.enabled,
                password=body.password,
                remove_password=body.remove_password,
                actor=actor_of(request),
            )
        except RegistryError as exc:
            raise _http(exc) from None
        return _station_out(station)

    @router.post(
        "/tokens",
        status_code=201,
        response_model=TokenOut,
        tags=["tokens"],
        responses={409: {"description": "The id token is registered already."}},
    )
    async def add_token(body: TokenIn, request: Request) -> TokenOut:
        """Register an id token (409 if it is registered already)."""
        try:
            token = await registry.add_token(**body.model_dump(), actor=actor_of(request))
        except RegistryError as exc:
            raise _http(exc) from None
        return _token_out(token)

    @router.get("/tokens", response_model=list[TokenOut], tags=["tokens"], responses=PAGED)
    async def list_tokens(
        request: Request,
        response: Response,
        after: str = Query("", description=AFTER + " The last id_token of a page."),
        limit: int = Query(1000, ge=1, le=10000),
    ) -> list[TokenOut]:
        """Registered id tokens, by id_token."""
        found = await registry.tokens(limit=limit + 1, after=after)
        return [_token_out(t) for t in page(found, limit, lambda t: t.id_token, request, response)]

    @router.get(
        "/tokens/{id_token}",
        response_model=TokenOut,
        tags=["tokens"],
        responses={404: {"description": "No such id token."}},
    )
    async def get_token(id_token: str) -> TokenOut:
        token = await registry.token(id_token)
        if token is None:
            raise HTTPException(404, f"no id token {id_token!r}")
        return _token_out(token)

    @router.patch(
        "/tokens/{id_token}",
        response_model=TokenOut,
        tags=["tokens"],
        responses={404: {"description": "No such id token: add it first."}},
    )
    async def change_token(id_token: str, body: TokenChange, request: Request) -> TokenOut:
        """Change the fields given (a field given as null is cleared); gateways see the change
        within their token cache time (token_cache_ttl_s)."""
        changes: dict[str, Any] = body.model_dump(exclude_unset=True)
        if changes.get("status", "") is None:
            raise HTTPException(422, "status cannot be cleared")
        try:
            token = await registry.update_token(id_token, actor=actor_of(request), **changes)
        except RegistryError as exc:
            raise _http(exc) from None
        return _token_out(token)

    return router
