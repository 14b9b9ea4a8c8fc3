"""HTTP routes the quality-system integration delivers reports to."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel

from app.auth.dependencies import require
from app.auth.principal import Principal, Role
from app.db import SessionDep
from app.dependencies import LocalTzDep, SettingsDep
from app.errors import FieldError, PayloadTooLarge, error_responses
from app.ingest import service
from app.ingest.schemas import BatchIn, BatchOut, IngestedReport, Outcome, ReportIn
from app.observability import metrics
from app.registry import scoring
from app.registry.cache import ActiveModelCache

router = APIRouter(prefix="/api/v1/reports", tags=["ingest"])

_UPSERT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Updated, unchanged, or stale (an older version: acknowledged, not applied)"},
    201: {"description": "Created"},
    **error_responses(401, 403, 409, 413, 422, 429, 503),
}


def scorer(request: Request, settings: SettingsDep) -> scoring.Scorer | None:
    """Score new and changed reports with the active model, unless scoring is switched off."""
    cache: ActiveModelCache | None = request.app.state.models
    if cache is None:
        return None
    return scoring.ingest_scorer(cache, settings.flag_threshold)


ScorerDep = Annotated[scoring.Scorer | None, Depends(scorer)]


@router.post("", status_code=201, summary="Create or update a report (idempotent)", response_model=IngestedReport,
             responses=_UPSERT_RESPONSES)
def post_report(
    body: ReportIn, request: Request, session: SessionDep, local: LocalTzDep, score: ScorerDep,
    principal: Annotated[Principal, require(Role.INTEGRATION)],
) -> Response:
    """Store a delivery from the quality system. Safe to retry; an older version never overwrites a newer.
    The answer is the outcome, the id and the versions: never the stored report's text or labels."""
    answer = service.upsert_report(session, body, local, score)
    metrics.defer(request.scope, metrics.INGESTED, outcome=answer.outcome.value)
    return _json(answer, 201 if answer.outcome is Outcome.CREATED else 200)


@router.post("/batch", summary="Create or update up to 1,000 reports", response_model=BatchOut,
             responses=error_responses(401, 403, 413, 422, 429, 503))
def post_batch(
    body: BatchIn, request: Request, session: SessionDep, settings: SettingsDep, local: LocalTzDep,
    score: ScorerDep, principal: Annotated[Principal, require(Role.INTEGRATION)],
) -> Response:
    """One result per item, in the order sent; an invalid item does not stop the others."""
    limit = settings.max_batch_items
    if len(body.reports) > limit:
        raise PayloadTooLarge(f"at most {limit} reports per batch",
                              [FieldError(field="reports", reason=f"{len(body.reports)} items; at most {limit}")])
    deliveries = service.parse_items(body.reports)
    outcomes = service.upsert_reports(session, deliveries, local, score)
    results = service.batch_results(deliveries, outcomes)
    counts = Counter(r.outcome for r in results)
    for outcome, n in counts.items():
        metrics.defer(request.scope, metrics.INGESTED, n, outcome=outcome.value)
    return _json(BatchOut(results=results, counts=dict(counts)), 200)


def _json(answer: BaseModel, status: int) -> Response:
    # The answer is built and validated here from typed values; handing FastAPI the model would make it
    # validate and convert all of it a second time (for a batch, a thousand results).
    return Response(answer.model_dump_json(), status_code=status, media_type="application/json")
