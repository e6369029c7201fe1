"""HTTP API of the log entries processors could not handle, and which processors are stuck.

A processor notes an entry it cannot handle in ``processing_errors`` and goes on with the rest
(``core/runtime.py``); nothing the gateway confirmed should ever be there. ``stuck`` tells
``/readyz`` which processors make no progress.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field

from ..core.runtime import ProcessorRunner
from ..queries import processing_errors as queries
from .paging import AFTER, page

Fetch = Callable[..., Awaitable[list[dict[str, Any]]]]


class ProcessingError(BaseModel):
    id: int = Field(description="Numbers the errors in the order they were noted; see `after`.")
    processor: str = Field(description="The processor (consumer group) that could not go on.")
    log_position: str = Field(description="stream/partition/offset of the entry.")
    error: str
    noted_at: datetime


def processing_errors_router(fetch: Fetch) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["operations"])

    @router.get(
        "/processing-errors", responses={404: {"description": "No error with the `after` id."}}
    )
    async def processing_errors(
        request: Request,
        response: Response,
        order: Literal["newest", "log"] = Query(
            "newest", description="newest first, or in log order (stream, partition, offset)."
        ),
        after: int | None = Query(None, ge=0, le=2**63 - 1, description=AFTER),
        processor: str | None = Query(None, description="Only this processor's errors."),
        limit: int = Query(100, ge=1, le=1000),
    ) -> list[ProcessingError]:
        """Log entries a processor could not handle and skipped (the entry stays on the log)."""
        if after is not None and not await queries.exists(fetch, after):
            raise HTTPException(404, f"no processing error with id {after}")
        rows = await queries.errors_page(fetch, order, after, processor, limit + 1)
        rows = page(rows, limit, lambda r: str(r["id"]), request, response)
        return [
            ProcessingError(
                id=r["id"],
                processor=r["processor"],
                log_position=f"{r['stream']}/{r['partition']}/{r['offset']}",
                error=r["error"],
                noted_at=r["noted_at"],
            )
            for r in rows
        ]

    return router


def stuck(runners: Sequence[ProcessorRunner[Any]]) -> str | None:
    """Why processors are stuck (each one's reason), or None when none is."""
    reasons = [reason for runner in runners if (reason := runner.stuck()) is not None]
    return "; ".join(reasons) or None
