"""HTTP API of the review of sessions held back from invoicing."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field

from ..invoicing.reviews import ReviewError, Reviews
from .access_guard import actor_of
from .inputs import Int4, Text
from .paging import AFTER, PAGED, page


class Held(BaseModel):
    session_id: str
    revision: int = Field(description="The revision held: what a decision applies to.")
    reason: str
    station_id: str
    id_tag: str | None
    started_at: datetime
    stopped_at: datetime | None
    energy_wh: int
    flags: list[str]


class DecisionIn(BaseModel):
    reviewer: Text = Field(min_length=1, max_length=100, description="Who decides.")
    note: Text = Field("", max_length=1000, description="Why; kept on the log.")
    revision: Int4 | None = Field(
        None, description="The revision looked at; refused (409) if another is held now."
    )


class DecisionOut(BaseModel):
    event_id: str
    session_id: str
    revision: int
    decision: Literal["release", "dismiss"]
    reviewer: str
    decided_at: datetime


def reviews_router(reviews: Reviews) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["invoices"])

    @router.get("/invoices/held", responses=PAGED)
    async def held(
        request: Request,
        response: Response,
        after: str | None = Query(None, description=AFTER + " The last session_id of a page."),
        limit: int = Query(1000, ge=1, le=10000),
    ) -> list[Held]:
        """Completed sessions not invoiced until a person decides: flags that need review, or
        signed meter values that do not back the figures (an invalid signature, or signed
        readings that disagree). With the reason and the revision held."""
        found = sorted(
            (session_id, h)
            for session_id, h in (await reviews.held()).items()
            if after is None or session_id > after
        )
        return [
            Held(
                session_id=session_id,
                revision=h.session.revision,
                reason=h.reason,
                station_id=h.session.station_id,
                id_tag=h.session.id_tag,
                started_at=h.session.started_at,
                stopped_at=h.session.stopped_at,
                energy_wh=h.session.energy_wh,
                flags=list(h.session.flags),
            )
            for session_id, h in page(found, limit, lambda f: f[0], request, response)
        ]

    async def decide(
        session_id: str,
        decision: Literal["release", "dismiss"],
        body: DecisionIn,
        actor: str | None,
    ) -> DecisionOut:
        try:
            event = await reviews.decide(
                session_id,
                decision,
                reviewer=body.reviewer,
                note=body.note,
                revision=body.revision,
                actor=actor,
            )
        except ReviewError as exc:
            raise HTTPException(exc.status, str(exc)) from None
        return DecisionOut(
            event_id=event.event_id,
            session_id=session_id,
            revision=event.session_revision,
            decision=decision,
            reviewer=event.reviewer,
            decided_at=event.decided_at,
        )

    @router.post(
        "/invoices/held/{session_id}/release",
        status_code=202,
        responses={
            404: {"description": "The session is not held."},
            409: {"description": "Another revision of the session is held now."},
        },
    )
    async def release(session_id: str, body: DecisionIn, request: Request) -> DecisionOut:
        """Invoice the held session as it is (its signature status and flags stay on record).
        202: the decision is on the log; the invoice follows when invoicing reads it."""
        return await decide(session_id, "release", body, actor_of(request))

    @router.post(
        "/invoices/held/{session_id}/dismiss",
        status_code=202,
        responses={
            404: {"description": "The session is not held."},
            409: {"description": "Another revision of the session is held now."},
        },
    )
    async def dismiss(session_id: str, body: DecisionIn, request: Request) -> DecisionOut:
        """Never invoice the held session (a test, a fault); the decision stays on the log."""
        return await decide(session_id, "dismiss", body, actor_of(request))

    return router
