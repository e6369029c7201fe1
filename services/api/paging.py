"""Cursor pagination of the API's lists.

A list answers a JSON array of at most ``limit`` items. When more follow, the answer carries the
cursor of the next page in ``X-Next-After`` and as a ``Link: <…?after=CURSOR…>; rel="next"``
header; the client passes it back as ``after``. For lists of things with an id (stations,
tokens, invoices, CDRs, tariffs, …) the cursor is the last id of the page; for lists in time
order it is opaque (``encode``/``decode`` below).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlencode

from fastapi import HTTPException, Request, Response

from ..core.bounds import INT8_MAX, INT8_MIN
from .guard import validation_error

T = TypeVar("T")

NEXT_HEADER = "X-Next-After"
PAGE_HEADERS = {
    NEXT_HEADER: {
        "description": "Present when more items follow: pass it as `after` for the next page.",
        "schema": {"type": "string"},
    },
    "Link": {
        "description": 'Present when more items follow: the next page\'s URL, rel="next".',
        "schema": {"type": "string"},
    },
}
PAGED: dict[int | str, dict[str, Any]] = {200: {"headers": PAGE_HEADERS}}
AFTER = "The `X-Next-After` header of the previous page; absent: from the start."


def bad_cursor(message: str = "not a cursor of this list (take X-Next-After)") -> HTTPException:
    return HTTPException(422, [validation_error(["query", "after"], message)])


def encode(*values: str | int | datetime | None) -> str:
    """An opaque cursor holding ``values``."""
    plain = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    text = json.dumps(plain, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(text).decode().rstrip("=")


def decode(cursor: str, *kinds: type) -> tuple[Any, ...]:
    """The values of a cursor made by ``encode`` with values of these kinds (str, int or
    datetime); 422 for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (ValueError, binascii.Error):
        raise bad_cursor() from None
    if not isinstance(values, list) or len(values) != len(kinds):
        raise bad_cursor()
    out: list[Any] = []
    for value, kind in zip(values, kinds, strict=True):
        if kind is datetime:
            try:
                moment = datetime.fromisoformat(value) if isinstance(value, str) else None
            except ValueError:
                moment = None
            if moment is None or moment.utcoffset() is None:
                raise bad_cursor()
            out.append(moment)
        elif kind is int:
            if type(value) is not int or not INT8_MIN <= value <= INT8_MAX:
                raise bad_cursor()
            out.append(value)
        elif not isinstance(value, str) or "\x00" in value:
            raise bad_cursor()
        else:
            out.append(value)
    return tuple(out)


def page(
    rows: Sequence[T],
    limit: int,
    cursor: Callable[[T], str],
    request: Request,
    response: Response,
) -> list[T]:
    """The first ``limit`` of ``rows`` (fetched as ``limit + 1``); when there were more, the
    next page's cursor is set on ``response``."""
    if len(rows) <= limit:
        return list(rows)
    kept = list(rows[:limit])
    set_next(request, response, cursor(kept[-1]))
    return kept


def set_next(request: Request, response: Response, after: str) -> None:
    response.headers.update(next_headers(request, after))


def next_headers(request: Request, after: str) -> dict[str, str]:
    """The headers that say the next page starts after ``after``."""
    return {NEXT_HEADER: after, "Link": f'<{next_url(request, after)}>; rel="next"'}


def next_url(request: Request, after: str) -> str:
    """The request's path and query with ``after`` in place of ``after``/``after_offset``."""
    params = [
        (k, v) for k, v in request.query_params.multi_items() if k not in ("after", "after_offset")
    ]
    return f"{request.url.path}?{urlencode([*params, ('after', after)])}"
