"""ASGI middleware that checks every HTTP request before the API sees it.

- The URL: a NUL (``%00``) in the path or in a query parameter is refused (422), naming where.
- The body: at most ``max_body_bytes``, counted while it arrives (a declared Content-Length
  above it is refused before reading; a chunked body as soon as it passes it): 413.
- A JSON body (or one sent without a content type, which FastAPI reads as JSON): as
  ``inputs.load_json`` accepts it, else 422 naming the field.

The API runs in the gateway's process, so what it reads and parses takes time from the stations:
nothing larger than the limit is ever held in memory.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .inputs import JsonInputError, load_json


def validation_error(loc: list[str | int], message: str) -> dict[str, Any]:
    """One entry of a 422 answer's ``detail``, shaped as FastAPI's own."""
    return {"loc": loc, "msg": message, "type": "value_error"}


def _url_problem(scope: Scope) -> dict[str, Any] | None:
    if "\x00" in scope.get("path", ""):
        return validation_error(["path"], "the URL path contains a NUL character (%00)")
    query: bytes = scope.get("query_string", b"")
    if b"%00" in query.lower() or b"\x00" in query:
        for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            if "\x00" in name or "\x00" in value:
                where = name.replace("\x00", "%00")
                return validation_error(["query", where], "contains a NUL character (%00)")
    return None


class InputGuard:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = _url_problem(scope)
        if problem is not None:
            await JSONResponse({"detail": [problem]}, 422)(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._too_large(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.max_body_bytes:
                await self._too_large(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        headers = dict(scope["headers"])
        media_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        as_json = media_type in (b"", b"application/json") or media_type.endswith(b"+json")
        if body and (as_json or bytes(body.lstrip()[:1]) in (b"{", b"[")):
            try:
                load_json(bytes(body))
            except JsonInputError as exc:
                detail = [validation_error(["body", *exc.loc], str(exc))]
                await JSONResponse({"detail": detail}, 422)(scope, receive, send)
                return
            except ValueError as exc:  # not JSON (or not UTF-8)
                if as_json:
                    detail = [validation_error(["body"], f"not JSON: {exc}")]
                    await JSONResponse({"detail": detail}, 422)(scope, receive, send)
                    return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse(
            {
                "detail": f"the request body is larger than {self.max_body_bytes} bytes"
                " (CHARGELEDGER_MAX_REQUEST_BODY_BYTES)"
            },
            413,
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)
