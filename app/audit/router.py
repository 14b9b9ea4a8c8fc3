"""HTTP route of the audit log (admins only; there is no route that changes it)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from app.audit import service
from app.audit.schemas import AuditEventOut, AuditPage, AuditQuery
from app.auth.dependencies import require
from app.auth.principal import Principal, Role
from app.db import SessionDep, SessionMakerDep
from app.dependencies import LocalTzDep
from app.errors import error_responses
from app.export import csv_response

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])

CSV_COLUMNS = list(AuditEventOut.model_fields)


@router.get("", summary="Read the audit log", response_model=AuditPage,
            responses={200: {"content": {"text/csv": {}}, "description": "JSON page, or CSV with format=csv"},
                       **error_responses(401, 403, 422, 429)})
def get_audit(
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, require(Role.ADMIN)],
    local: LocalTzDep,
    maker: SessionMakerDep,
    query: Annotated[AuditQuery, Query()],
) -> AuditPage | Response:
    """Newest first. `format=csv` streams every matching row (semicolon-separated, UTF-8 with BOM)."""
    if query.format == "csv" or "text/csv" in request.headers.get("accept", ""):

        def rows() -> Iterator[dict[str, Any]]:
            # The request's transaction ends before the body streams: the export reads in its own.
            with maker() as own:
                for event in service.iter_events(own, query, local):
                    yield service.export_row(event, local)

        return csv_response("audit.csv", CSV_COLUMNS, rows())
    return service.list_events(session, query, local)
