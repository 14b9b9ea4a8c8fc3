"""HTTP routes of statistics (aggregates only); each answers JSON, or the same answer as CSV."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from app.audit import service as audit
from app.auth.dependencies import require
from app.auth.principal import Principal, Role
from app.db import SessionDep
from app.dependencies import LocalTzDep
from app.errors import error_responses
from app.export import csv_response, wants_csv
from app.fields import ReportIdPath
from app.stats import export, service
from app.stats.schemas import (
    CountsOut,
    CountsQuery,
    EstimateOut,
    EstimateQuery,
    MatrixOut,
    MatrixQuery,
    RecurringOut,
    RecurringQuery,
    SimilarOut,
    SimilarQuery,
    StatsQuery,
    TrendOut,
    TrendQuery,
)
from app.stats.scope import Scope

router = APIRouter(prefix="/api/v1/stats", tags=["stats"])
similar_router = APIRouter(prefix="/api/v1/reports", tags=["stats"])
T = TypeVar("T")


def responses(*errors: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI answers of a statistics route: JSON or CSV, and its errors."""
    return {200: {"description": "The answer as JSON, or as a CSV table with format=csv or Accept: text/csv "
                                 "(UTF-8 with BOM, semicolon-separated; see the README)",
                  "content": {"text/csv": {"schema": {"type": "string"}}}},
            **error_responses(401, 403, *errors, 422, 429)}


def answer(request: Request, query: StatsQuery, name: str, result: T,
           table: Callable[[T], export.Table]) -> T | Response:
    """The result as JSON, or as the CSV table the caller asked for (same content, same rules)."""
    if not wants_csv(query.format, request.headers.get("accept")):
        return result
    columns, rows = table(result)
    return csv_response(f"{name}.csv", columns, rows)


@router.get("/counts", summary="Counts of reports by one or two dimensions, confirmed and suggested apart",
            response_model=CountsOut, responses=responses())
def get_counts(request: Request, session: SessionDep, scope: Scope,
               query: Annotated[CountsQuery, Query()]) -> CountsOut | Response:
    """`by=period&by=target_group`, `period=month|quarter|year`, and every filter of the report list.
    Dashboards get fixed tables (whole months; department, agency, target group, service, category; any other
    parameter is a 422 naming it) with every count perturbed by the cell-key method (README, Small numbers)."""
    result = service.counts(session, query, scope.local, scope.departments, scope.protect_small, scope.k)
    return answer(request, query, "counts", result, export.counts_table)


@router.get("/trend", summary="Count per period, share of all reports, change from before and last year",
            response_model=TrendOut, responses=responses())
def get_trend(request: Request, session: SessionDep, scope: Scope,
              query: Annotated[TrendQuery, Query()]) -> TrendOut | Response:
    """Under any filter of the report list; confirmed only unless include_suggested=true."""
    result = service.trend(session, query, scope.local, scope.departments, scope.protect_small, scope.k)
    return answer(request, query, "trend", result, export.trend_table)


@router.get("/collaboration-matrix", summary="Who fails to work with whom: pairs of services and agencies",
            response_model=MatrixOut, responses=responses())
def get_matrix(request: Request, session: SessionDep, scope: Scope,
               query: Annotated[MatrixQuery, Query()]) -> MatrixOut | Response:
    """Among reports under the filter (by default those in samhandling_barn_unge)."""
    result = service.matrix(session, query, scope.local, scope.departments, scope.protect_small, scope.k)
    return answer(request, query, "collaboration-matrix", result, export.matrix_table)


@router.get("/recurring", summary="Groups of similar collaboration deviations between the same services",
            response_model=RecurringOut, responses=responses())
def get_recurring(request: Request, session: SessionDep, principal: Annotated[Principal, require(Role.ADVISER)],
                  local: LocalTzDep, query: Annotated[RecurringQuery, Query()]) -> RecurringOut | Response:
    """Each group with its size, services, units, characteristic words and example report ids."""
    result = service.recurring(session, query, local, principal.departments)
    audit.record(session, request, principal, "stats.recurring",
                 report_ids=[i for g in result.groups for i in g.report_ids], query=query.model_dump(mode="json"))
    return answer(request, query, "recurring", result, export.recurring_table)


@similar_router.get("/{report_id}/similar", summary="Reports that resemble a report (text and services)",
                    response_model=SimilarOut, responses=responses(404))
def get_similar(request: Request, report_id: ReportIdPath, session: SessionDep,
                principal: Annotated[Principal, require(Role.ADVISER)], local: LocalTzDep,
                query: Annotated[SimilarQuery, Query()]) -> SimilarOut | Response:
    """Best first, among the most recent reports under the filter; titles are free text, so it is logged."""
    result = service.similar(session, report_id, query, local, principal.departments, query.limit)
    audit.record(session, request, principal, "report.similar",
                 report_ids=[report_id, *(i.report.id for i in result.items)])
    return answer(request, query, "similar", result, export.similar_table)


@router.get("/estimate", summary="Collaboration deviations about children: confirmed and estimated",
            response_model=EstimateOut, responses=responses())
def get_estimate(request: Request, session: SessionDep, scope: Scope,
                 query: Annotated[EstimateQuery, Query()]) -> EstimateOut | Response:
    """The confirmed count, plus an estimate with a 95 % interval among reports nobody has decided on."""
    result = service.estimate_count(session, query, scope.local, scope.departments, scope.protect_small, scope.k)
    return answer(request, query, "estimate", result, export.estimate_table)
