"""ASGI middleware: who is asking, and may they. It runs before anything else reads the request,
so nobody without a right gets a body read, parsed or stored; and it puts the security headers
on every answer.

Credentials: ``Authorization: Bearer TOKEN`` (an API token), or the console's session cookie,
with which every state-changing request must repeat the session's CSRF token in the
``X-CSRF-Token`` header. The principal found is put in the request's state
(``request.state.principal``), where endpoints take the actor of what they write on the log.
With checking off (``--no-api-auth``), every request passes, without actor.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from http.cookies import CookieError, SimpleCookie

import psycopg
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..access.roles import may, roles_with
from ..access.sessions import COOKIE, CSRF_HEADER, Session
from ..access.store import Principal
from .rights import required

TokenLookup = Callable[[str], Awaitable[Principal | None]]
SessionLookup = Callable[[str], Awaitable[Session | None]]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# The interactive API documentation loads its scripts from a CDN: no policy of ours there.
_UNRESTRICTED = ("/docs", "/redoc")
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "content-security-policy": "default-src 'self'; frame-ancestors 'none'; base-uri 'none';"
    " form-action 'self'; object-src 'none'",
}


def bearer_token(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return str(token.strip())
    return None


def _header(scope: Scope, wanted: bytes) -> str | None:
    for name, value in scope["headers"]:
        if name == wanted:
            return str(value.decode("latin-1"))
    return None


def session_cookie(scope: Scope) -> str | None:
    raw = _header(scope, b"cookie")
    if raw is None:
        return None
    try:
        morsel = SimpleCookie(raw).get(COOKIE)
    except CookieError:
        return None
    return morsel.value if morsel is not None and morsel.value else None


class AccessGuard:
    def __init__(
        self,
        app: ASGIApp,
        *,
        enabled: bool,
        metrics_open: bool,
        tokens: TokenLookup,
        sessions: SessionLookup,
    ) -> None:
        self.app = app
        self.enabled = enabled
        self.metrics_open = metrics_open
        self.tokens = tokens
        self.sessions = sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = _with_security_headers(scope, send)
        if not self.enabled:
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        right = required(method, path, metrics_open=self.metrics_open)
        if right is None:
            await self.app(scope, receive, send)
            return
        principal: Principal | None = None
        session: Session | None = None
        token = bearer_token(scope)
        try:
            if token is not None:
                principal = await self.tokens(token)
            elif (cookie := session_cookie(scope)) is not None:
                session = await self.sessions(cookie)
                principal = session.principal if session is not None else None
        except psycopg.OperationalError as exc:  # the database is away: say so, as the API does
            reason = " ".join(str(exc).split())[:300]
            await JSONResponse(
                {"detail": f"cannot check credentials now: {reason}; try again shortly"},
                503,
                headers={"Retry-After": "5"},
            )(scope, receive, send)
            return
        if principal is None:
            why = (
                "a valid API token or console session"
                if token is None
                else "a valid API token (this one is not)"
            )
            await JSONResponse(
                {"detail": f"{method} {path} needs {why}: send Authorization: Bearer TOKEN"},
                401,
                headers={"WWW-Authenticate": 'Bearer realm="ChargeLedger"'},
            )(scope, receive, send)
            return
        if session is not None and method not in SAFE_METHODS:
            given = _header(scope, CSRF_HEADER.encode()) or ""
            if not hmac.compare_digest(given.encode(), session.csrf_token.encode()):
                await JSONResponse(
                    {
                        "detail": f"{method} {path} with the session cookie needs the session's"
                        f" CSRF token in the {CSRF_HEADER} header"
                    },
                    403,
                )(scope, receive, send)
                return
        if not may(principal.role, right):
            allowed = ", ".join(roles_with(right))
            await JSONResponse(
                {
                    "detail": f"{principal.actor} has the role {principal.role}, which may not"
                    f" {method} {path}; that needs one of the roles {allowed}"
                },
                403,
            )(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state["principal"] = principal
        state["session"] = session
        await self.app(scope, receive, send)


def _with_security_headers(scope: Scope, send: Send) -> Send:
    path: str = scope["path"]
    restricted = not path.startswith(_UNRESTRICTED)

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableHeaders(scope=message)
            for name, value in SECURITY_HEADERS.items():
                if restricted or name != "content-security-policy":
                    headers.setdefault(name, value)
            if path.startswith("/api/"):
                headers.setdefault("cache-control", "no-store")
        await send(message)

    return sending


def actor_of(request: Request) -> str | None:
    """Who made this request (user:NAME or token:NAME), for the event it writes; None with
    access checking off."""
    principal: Principal | None = getattr(request.state, "principal", None)
    return principal.actor if principal is not None else None
