"""Serves the console's files, shipped in the package (no CDN, no build step): ``/`` is the
page, ``/console/NAME`` its script, style sheet and icon."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, HTTPException, Response

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


def _load() -> dict[str, bytes]:
    folder = resources.files(__package__).joinpath("static")
    return {
        item.name: item.read_bytes()
        for item in folder.iterdir()
        if item.is_file() and any(item.name.endswith(suffix) for suffix in _TYPES)
    }


def _response(name: str, body: bytes) -> Response:
    media_type = next(t for suffix, t in _TYPES.items() if name.endswith(suffix))
    # Revalidated on every load: an upgraded server never runs with yesterday's script.
    return Response(body, media_type=media_type, headers={"Cache-Control": "no-cache"})


def console_router() -> APIRouter:
    files = _load()
    router = APIRouter(include_in_schema=False)

    @router.api_route("/", methods=["GET", "HEAD"])
    async def page() -> Response:
        return _response("index.html", files["index.html"])

    @router.api_route("/console/{name}", methods=["GET", "HEAD"])
    async def asset(name: str) -> Response:
        if name == "index.html" or name not in files:
            raise HTTPException(404, f"no console file {name!r}")
        return _response(name, files[name])

    return router
