"""HTTP routes the quality-system integration delivers reports to."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.auth.dependencies import require
from app.auth.principal import Principal, Role
from app.db import SessionDep
from app.errors import FieldError, PayloadTooLarge, error_responses
from app.ingest import service
from app.ingest.schemas import BatchIn, BatchOut, IngestedReport, Outcome, ReportIn
from app.report import service as report_service
from app.review import scoring

router = APIRouter(prefix="/api/v1/reports", tags=["ingest"])

_UPSERT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Updated, unchanged, or stale (an older version: acknowledged, not applied)"},
    201: {"description": "Created"},
    **error_responses(401, 403, 409, 413, 422, 429, 503),
}


def scorer(request: Request) -> service.Scorer | None:
    """Score new and changed reports with the active model, unless scoring is switched off."""
    cache = request.app.state.models
    if cache is None:
        return None
    settings = request.app.state.settings

    def score(session: Session, ids: Sequence[int]) -> int:
        model = scoring.active_model(session, cache, settings.model_dir, by="bootstrap")
        return scoring.score_reports(session, model, ids, settings.flag_threshold)

    return score


@router.post("", status_code=201, summary="Create or update a report (idempotent)", responses=_UPSERT_RESPONSES)
def post_report(
    body: ReportIn, request: Request, response: Response, session: SessionDep,
    principal: Annotated[Principal, require(Role.INTEGRATION)],
) -> IngestedReport:
    """Store a delivery from the quality system. Safe to retry; an older version never overwrites a newer."""
    outcome, report = service.upsert_report(session, body, request.app.state.local_tz, scorer(request))
    # The answer carries the report's free text back to the caller, so it is logged like any read.
    audit.record(session, request, principal, "report.ingest", report_ids=[report.id])
    if outcome is not Outcome.CREATED:
        response.status_code = 200
    return IngestedReport(**report_service.detail(report).model_dump(), outcome=outcome)


@router.post("/batch", summary="Create or update up to 1,000 reports",
             responses=error_responses(401, 403, 413, 422, 429, 503))
def post_batch(
    body: BatchIn, request: Request, session: SessionDep,
    principal: Annotated[Principal, require(Role.INTEGRATION)],
) -> BatchOut:
    """One result per item, in the order sent; an invalid item does not stop the others."""
    limit = request.app.state.settings.max_batch_items
    if len(body.reports) > limit:
        raise PayloadTooLarge(f"at most {limit} reports per batch",
                              [FieldError(field="reports", reason=f"{len(body.reports)} items; at most {limit}")])
    deliveries = service.parse_items(body.reports)
    outcomes = service.upsert_reports(session, deliveries, request.app.state.local_tz, scorer(request))
    results = service.batch_results(deliveries, outcomes)
    return BatchOut(results=results, counts=dict(Counter(r.outcome for r in results)))
