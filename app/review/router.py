"""HTTP routes of reviews, report history and the review queue."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response

from app.audit import service as audit
from app.auth.dependencies import require
from app.auth.principal import Principal, Role
from app.db import SessionDep, SessionMakerDep
from app.dependencies import CursorKeyDep, LocalTzDep, SettingsDep
from app.errors import error_responses
from app.export import CsvFormat, csv_answer, csv_response, wants_csv
from app.fields import ReportIdPath
from app.review import service
from app.review.schemas import ETAG_HEADER, ReportHistory, ReviewIn, ReviewOut, ReviewQueuePage, ReviewQueueQuery

router = APIRouter(prefix="/api/v1", tags=["review"])
Adviser = Annotated[Principal, require(Role.ADVISER)]
_ERRORS = error_responses(401, 403, 404, 422, 429)


@router.post("/reports/{report_id}/review", status_code=201,
             summary="Decide on a report: is_case, not_case, or correct its labels",
             responses={201: {"headers": ETAG_HEADER},
                        200: {"description": "The same decision was already recorded (idempotent)",
                              "headers": ETAG_HEADER},
                        **error_responses(412), **_ERRORS})
def post_review(report_id: ReportIdPath, body: ReviewIn, request: Request, response: Response, session: SessionDep,
                principal: Adviser, settings: SettingsDep, if_match: Annotated[str | None, Header(description=(
                    "The report's ETag as last read (GET /api/v1/reports/{id}): if someone decided since, nothing "
                    "is written and the answer is 412 naming who and when. Without it a decision supersedes "
                    "whatever is there."))] = None) -> ReviewOut:
    """A later review supersedes an earlier one; both stay in the history. Quality-system updates keep it.
    The answer's ETag is the report's review state after the decision."""
    created, review = service.record_decision(session, request, principal, report_id, body,
                                              settings.audit_sample_share,
                                              if_match=service.parse_if_match(if_match))
    if not created:
        response.status_code = 200
    response.headers["ETag"] = service.review_etag(session, report_id)
    return service.review_out(review, superseded=False)


@router.get("/reports/{report_id}/history", summary="Reviews of a report and its classification",
            response_model=ReportHistory, responses={200: csv_answer("The history"), **_ERRORS})
def get_history(report_id: ReportIdPath, request: Request, session: SessionDep, principal: Adviser,
                format: CsvFormat = "json") -> ReportHistory | Response:
    """Newest first; reviewers' comments are free text, so reading them is logged. As CSV: one row per review."""
    result = service.history(session, report_id, principal.departments)
    audit.record(session, request, principal, "report.history", report_ids=[report_id])
    if wants_csv(format, request.headers.get("accept")):
        return csv_response(f"history-{report_id}.csv", service.HISTORY_COLUMNS, service.history_rows(result))
    return result


@router.get("/review-queue", summary="Flagged reports waiting for review, with the audit sample mixed in",
            response_model=ReviewQueuePage,
            responses={200: csv_answer("A page of the queue, or the whole queue"),
                       **error_responses(401, 403, 422, 429)})
def get_review_queue(request: Request, session: SessionDep, principal: Adviser, settings: SettingsDep,
                     local: LocalTzDep, maker: SessionMakerDep, cursor_key: CursorKeyDep,
                     query: Annotated[ReviewQueueQuery, Query()]) -> ReviewQueuePage | Response:
    """order=score (highest first) or order=uncertain (nearest the threshold first). As CSV: the whole queue
    in that order, streamed, with a position column and the columns of the report list's CSV."""
    share = settings.audit_sample_share
    if wants_csv(query.format, request.headers.get("accept")):
        rows = service.queue_rows(session, maker, query, local, principal.departments, share)
        event_id = audit.record(session, request, principal, "review.queue.export.csv",
                                query=query.model_dump(mode="json", exclude={"cursor", "limit", "format"}))
        return csv_response("review-queue.csv", service.QUEUE_COLUMNS, audit.audited_export(maker, event_id, rows),
                            query.lang)
    page = service.review_queue(session, query, local, principal.departments, share, cursor_key)
    audit.record(session, request, principal, "review.queue", report_ids=[i.report.id for i in page.items],
                 query=query.model_dump(mode="json", exclude={"cursor", "format"}))
    return page
