"""Users and API tokens over HTTP, for admins (the console's users page): the same store the
``users`` and ``api-tokens`` commands write. Secrets only go in: a password is hashed, a new
token is shown once in the answer that creates it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

import psycopg
from fastapi import APIRouter, HTTPException
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, Field

from ..access import store
from .inputs import Moment, Text

T = TypeVar("T")
Name = Annotated[Text, Field(min_length=1, max_length=64)]
Password = Annotated[Text, Field(min_length=1, max_length=128)]


class UserOut(BaseModel):
    name: str
    role: str
    enabled: bool
    created_at: datetime
    updated_at: datetime


class UserIn(BaseModel):
    name: Name
    role: Text
    password: Password


class UserChange(BaseModel):
    role: Text | None = None
    enabled: bool | None = None
    password: Password | None = None


class TokenOut(BaseModel):
    name: str
    role: str
    expires_at: datetime | None
    created_at: datetime
    revoked_at: datetime | None


class TokenIn(BaseModel):
    name: Name
    role: Text
    expires_at: Moment | None = None


class NewToken(TokenOut):
    token: str = Field(description="The token itself: shown this once, only its hash is kept.")


def users_router(pool: AsyncConnectionPool) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["access"])

    def on_database(work: Callable[[psycopg.Connection[Any]], T]) -> T:
        conninfo = pool.conninfo
        if not isinstance(conninfo, str):
            raise TypeError("the users API needs a pool opened with a DSN")
        with psycopg.connect(conninfo) as conn:
            return work(conn)

    async def run(work: Callable[[psycopg.Connection[Any]], T]) -> T:
        """The store's work on a connection of its own, in a thread (it hashes with scrypt);
        what the store refuses is a 4xx saying why."""
        try:
            return await asyncio.to_thread(on_database, work)
        except store.AccessError as exc:
            message = str(exc)
            status = 404 if message.startswith("there is no ") else 409
            if not message.startswith("there is "):
                status = 422
            raise HTTPException(status, message) from None
        except ValueError as exc:  # a name, role or password the store does not take
            raise HTTPException(422, str(exc)) from None

    @router.get("/users", response_model=list[UserOut])
    async def list_users() -> list[UserOut]:
        """Every user with their role and whether they may log in."""
        return [UserOut(**r) for r in await run(store.list_users)]

    @router.post("/users", status_code=201, response_model=UserOut, responses={409: {}})
    async def add_user(body: UserIn) -> UserOut:
        """A new user with a role and a password."""
        row = await run(lambda c: store.add_user(c, body.name, body.role, body.password))
        return UserOut(**row)

    @router.patch("/users/{name}", response_model=UserOut, responses={404: {}})
    async def change_user(name: str, body: UserChange) -> UserOut:
        """Change a user's role, password, or whether they may log in (a disabled user's
        console sessions end at once)."""
        changes = body.model_dump(exclude_none=True)
        if not changes:
            raise HTTPException(422, "give role, enabled or password")
        return UserOut(**await run(lambda c: store.change_user(c, name, **changes)))

    @router.get("/api-tokens", response_model=list[TokenOut])
    async def list_tokens() -> list[TokenOut]:
        """Every API token (never the token itself), with its role and expiry."""
        return [TokenOut(**r) for r in await run(store.list_tokens)]

    @router.post("/api-tokens", status_code=201, response_model=NewToken, responses={409: {}})
    async def create_token(body: TokenIn) -> NewToken:
        """A new API token for a machine; the answer holds the token, shown this once."""
        row, token = await run(
            lambda c: store.create_token(c, body.name, body.role, body.expires_at)
        )
        return NewToken(**row, token=token)

    @router.delete("/api-tokens/{name}", response_model=TokenOut, responses={404: {}})
    async def revoke_token(name: str) -> TokenOut:
        """Revoke a token: it stops working at once."""
        return TokenOut(**await run(lambda c: store.revoke_token(c, name)))

    return router
