"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from app.migrate import current_revisions

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    """A probe's answer."""

    status: str
    detail: str | None = None


@router.get("/healthz", summary="Liveness: the process answers")
def healthz() -> Health:
    """Always ok while the process runs."""
    return Health(status="ok")


@router.get("/readyz", summary="Readiness: the database is reachable and migrated",
            responses={503: {"model": Health, "description": "Not ready"}})
def readyz(request: Request, response: Response) -> Health:
    """503 while the database cannot be reached or is not at the newest migration."""
    try:
        current = current_revisions(request.app.state.engine)
    except SQLAlchemyError:
        return _not_ready(response, "database unreachable")
    if current != request.app.state.head_revisions:
        return _not_ready(response, "database not migrated: run `avvik migrate`")
    return Health(status="ok")


def _not_ready(response: Response, detail: str) -> Health:
    response.status_code = 503
    response.headers["Retry-After"] = "5"
    return Health(status="unavailable", detail=detail)
