"""HTTP routes that read reports."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from app.audit import service as audit
from app.auth.dependencies import require
from app.auth.principal import Principal, Role
from app.db import SessionDep, SessionMakerDep
from app.dependencies import CursorKeyDep, LocalTzDep
from app.errors import error_responses
from app.export import XLSX_MEDIA_TYPE
from app.fields import ReportIdPath
from app.report import service
from app.report.schemas import ReportDetail, ReportListQuery, ReportPage
from app.review import service as review_service
from app.review.schemas import ETAG_HEADER

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])


_ERRORS = error_responses(401, 403, 422, 429)
Adviser = Annotated[Principal, require(Role.ADVISER)]


@router.get("", summary="List reports, filtered, newest first; or export them as CSV or XLSX",
            response_model=ReportPage,
            responses={200: {"content": {"text/csv": {}, XLSX_MEDIA_TYPE: {}},
                             "description": "A page as JSON, or every matching report as CSV or XLSX"}, **_ERRORS})
def get_reports(request: Request, session: SessionDep, principal: Adviser, maker: SessionMakerDep, local: LocalTzDep,
                cursor_key: CursorKeyDep, query: Annotated[ReportListQuery, Query()]) -> ReportPage | Response:
    """Filters combine with AND; a repeated filter matches any of its values. Titles count as free text.
    CSV is UTF-8 with a byte-order mark and semicolons (as Norwegian Excel opens it); times in exports are Oslo
    time. An export's audit row lists every report it carried."""
    wanted = "csv" if query.format == "json" and "text/csv" in request.headers.get("accept", "") else query.format
    if wanted != "json":
        return service.start_export(session, maker, local, request, principal, query, wanted, query.lang)
    page = service.list_reports(session, query, local, principal.departments, cursor_key)
    audit.record(session, request, principal, "report.list", report_ids=[r.id for r in page.items],
                 query=query.model_dump(mode="json", exclude={"cursor"}))
    return page


@router.get("/by-external/{source_system}/{external_id}", summary="Get a report by the source's case number",
            responses={200: {"headers": ETAG_HEADER}, **_ERRORS, **error_responses(404)})
def get_report_by_external(request: Request, response: Response, source_system: str, external_id: str,
                           session: SessionDep, principal: Adviser) -> ReportDetail:
    """The report as last delivered by the quality system; its ETag as for GET /api/v1/reports/{id}."""
    report = service.get_report_by_external(session, source_system, external_id, principal.departments)
    audit.record(session, request, principal, "report.read", report_ids=[report.id])
    response.headers["ETag"] = review_service.review_etag(session, report.id)
    return service.detail(report)


@router.get("/{report_id}", summary="Get a report",
            responses={200: {"headers": ETAG_HEADER}, **_ERRORS, **error_responses(404)})
def get_report(request: Request, response: Response, report_id: ReportIdPath, session: SessionDep,
               principal: Adviser) -> ReportDetail:
    """A report with its free text; another department's report is 404, so ids cannot be probed. The ETag is
    the version of its review state: send it as If-Match with a review so as not to overwrite a colleague's."""
    report = service.get_report(session, report_id, principal.departments)
    audit.record(session, request, principal, "report.read", report_ids=[report.id])
    response.headers["ETag"] = review_service.review_etag(session, report.id)
    return service.detail(report)
