"""Log in and out of the console: ``/api/v1/session`` sets and clears the session cookie."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Request, Response
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, Field

from ..access import sessions, store
from ..access.credentials import DUMMY_PASSWORD_HASH, verify_password
from ..access.roles import RIGHTS, may
from ..access.throttle import Throttle
from .inputs import Text


def rights_of(role: str) -> list[str]:
    return [right for right in RIGHTS if may(role, right)]


PER_CLIENT_FAILURES = 20  # wrong logins from one address within a minute, whatever the name


class Login(BaseModel):
    name: Annotated[Text, Field(max_length=64)]
    password: Annotated[Text, Field(max_length=128)]


class SessionOut(BaseModel):
    kind: Literal["user", "token"]
    name: str
    role: str
    rights: list[str] = Field(description="What the role may do (read, operate, finance, ...).")
    csrf_token: str | None = Field(
        description="Repeat it in the X-CSRF-Token header of every request that changes"
        " something (null for an API token, which needs none)."
    )
    expires_at: datetime | None


def session_router(
    pool: AsyncConnectionPool, *, lifetime: timedelta, secure_cookie: bool
) -> APIRouter:
    router = APIRouter(tags=["session"])
    by_name = Throttle(time.monotonic)
    by_client = Throttle(time.monotonic, allowed=PER_CLIENT_FAILURES)

    @router.post(
        "/api/v1/session",
        response_model=SessionOut,
        responses={
            401: {"description": "Wrong user name or password, or the user is disabled."},
            429: {"description": "Too many failed logins from this address; see Retry-After."},
        },
    )
    async def log_in(login: Login, request: Request, response: Response) -> SessionOut:
        """Log in with a user's name and password: sets the session cookie (HttpOnly,
        SameSite=Strict) and answers the session's CSRF token."""
        client = request.client.host if request.client else ""
        wait_s = max(by_name.wait_s((client, login.name)), by_client.wait_s((client,)))
        if wait_s > 0:
            raise HTTPException(
                429,
                f"too many failed logins from {client}; try again in {int(wait_s) + 1} s",
                headers={"Retry-After": str(int(wait_s) + 1)},
            )
        found = await store.user_password_hash(pool, login.name)
        # A name nobody has is checked against a dummy hash: as slow as a real one.
        stored = found[1] if found is not None else DUMMY_PASSWORD_HASH
        valid = await asyncio.to_thread(verify_password, login.password, stored)
        if not valid or found is None:
            by_name.failed((client, login.name))
            by_client.failed((client,))
            raise HTTPException(401, "wrong user name or password")
        by_name.succeeded((client, login.name))
        session_id, session = await sessions.open_session(pool, login.name, lifetime)
        response.set_cookie(
            sessions.COOKIE,
            session_id,
            max_age=int(lifetime.total_seconds()),
            path="/",
            httponly=True,
            secure=secure_cookie,
            samesite="strict",
        )
        return SessionOut(
            kind="user",
            name=login.name,
            role=session.principal.role,
            rights=rights_of(session.principal.role),
            csrf_token=session.csrf_token,
            expires_at=session.expires_at,
        )

    @router.get(
        "/api/v1/session",
        response_model=SessionOut,
        responses={404: {"description": "Access checking is off: nobody is asking."}},
    )
    async def current(request: Request) -> SessionOut:
        """Who this request comes from: the console's session (with its CSRF token), or the
        API token."""
        principal: store.Principal | None = getattr(request.state, "principal", None)
        session: sessions.Session | None = getattr(request.state, "session", None)
        if principal is None:
            raise HTTPException(404, "access checking is off (--no-api-auth): nobody is asking")
        return SessionOut(
            kind="user" if principal.kind == "user" else "token",
            name=principal.name,
            role=principal.role,
            rights=rights_of(principal.role),
            csrf_token=session.csrf_token if session is not None else None,
            expires_at=session.expires_at if session is not None else None,
        )

    @router.delete("/api/v1/session", status_code=204)
    async def log_out(request: Request) -> Response:
        """Log out: ends the session and clears its cookie."""
        cookie = request.cookies.get(sessions.COOKIE)
        if cookie:
            await sessions.close_session(pool, cookie)
        response = Response(status_code=204)
        response.delete_cookie(
            sessions.COOKIE, path="/", httponly=True, secure=secure_cookie, samesite="strict"
        )
        return response

    return router
