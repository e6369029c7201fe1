"""ASGI middleware: who is asking, and may they. It runs before anything else reads the request,
so nobody without a right gets a body read, parsed or stored.

Credentials: ``Authorization: Bearer TOKEN`` (an API token). The principal found is put in the
request's state (``request.state.principal``), where endpoints take the actor of what they
write on the log. With checking off (``--no-api-auth``), every request passes, without actor.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from ..access.roles import may, roles_with
from ..access.store import Principal
from .rights import required

TokenLookup = Callable[[str], Awaitable[Principal | None]]


def bearer_token(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return str(token.strip())
    return None


class AccessGuard:
    def __init__(
        self, app: ASGIApp, *, enabled: bool, metrics_open: bool, tokens: TokenLookup
    ) -> None:
        self.app = app
        self.enabled = enabled
        self.metrics_open = metrics_open
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.enabled:
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        right = required(method, path, metrics_open=self.metrics_open)
        if right is None:
            await self.app(scope, receive, send)
            return
        token = bearer_token(scope)
        principal = await self.tokens(token) if token is not None else None
        if principal is None:
            why = "a valid API token" if token is None else "a valid API token (this one is not)"
            response = JSONResponse(
                {"detail": f"{method} {path} needs {why}: send Authorization: Bearer TOKEN"},
                401,
                headers={"WWW-Authenticate": 'Bearer realm="ChargeLedger"'},
            )
            await response(scope, receive, send)
            return
        if not may(principal.role, right):
            allowed = ", ".join(roles_with(right))
            response = JSONResponse(
                {
                    "detail": f"{principal.actor} has the role {principal.role}, which may not"
                    f" {method} {path}; that needs one of the roles {allowed}"
                },
                403,
            )
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)
