"""``GET /api/v1/audit``: who did what, from the audit trail (a projection of the log)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel

from ..queries import audit as queries
from . import paging
from .inputs import Moment, Text
from .paging import AFTER, PAGED, page

Fetch = Callable[..., Awaitable[list[dict[str, Any]]]]


class AuditEntryOut(BaseModel):
    occurred_at: datetime
    actor: str | None
    kind: str
    subject: str
    change: dict[str, Any]
    log_position: str


def audit_router(fetch: Fetch) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["audit"])

    @router.get("/audit", response_model=list[AuditEntryOut], responses=PAGED)
    async def audit(
        request: Request,
        response: Response,
        from_: Moment | None = Query(None, alias="from", description="From this time on."),
        to: Moment | None = Query(None, description="Before this time."),
        actor: Text | None = Query(
            None, max_length=200, description="Only this actor's (user:NAME or token:NAME)."
        ),
        kind: Text | None = Query(
            None, max_length=50, description="Only changes of this kind (review, tariff, ...)."
        ),
        after: str | None = Query(None, max_length=500, description=AFTER),
        limit: int = Query(100, ge=1, le=1000),
    ) -> list[AuditEntryOut]:
        """Every change made through the API or the CLI (stations, id tokens, tariffs and their
        assignments, meter keys, time zones, review decisions, commands), oldest first, with
        who made it as its event on the log says (null when access checking was off)."""
        start = None if after is None else paging.decode(after, datetime, str, int, int)
        rows = await queries.audit_page(fetch, from_, to, actor, kind, start, limit + 1)

        def cursor(r: dict[str, Any]) -> str:
            return paging.encode(r["occurred_at"], r["stream"], r["partition"], r["offset"])

        return [
            AuditEntryOut(
                occurred_at=r["occurred_at"],
                actor=r["actor"],
                kind=r["kind"],
                subject=r["subject"],
                change=r["change"],
                log_position=f"{r['stream']}/{r['partition']}/{r['offset']}",
            )
            for r in page(rows, limit, cursor, request, response)
        ]

    return router
