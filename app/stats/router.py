"""HTTP routes of statistics (aggregates only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from app.audit import service as audit
from app.auth.dependencies import require
from app.auth.principal import Principal, Role
from app.db import SessionDep
from app.errors import error_responses
from app.report.schemas import ReportFilter
from app.stats import service
from app.stats.schemas import (
    CountsOut,
    CountsQuery,
    EstimateOut,
    MatrixOut,
    MatrixQuery,
    RecurringOut,
    RecurringQuery,
    SimilarOut,
    SimilarQuery,
    TrendOut,
    TrendQuery,
)

router = APIRouter(prefix="/api/v1/stats", tags=["stats"])
similar_router = APIRouter(prefix="/api/v1/reports", tags=["stats"])
Aggregates = Annotated[Principal, require(Role.ADVISER, Role.DASHBOARD)]


def sees_cases(principal: Principal) -> bool:
    """Advisers and admins may see single cases; dashboards get small numbers suppressed."""
    return bool(principal.roles & {Role.ADVISER, Role.ADMIN})


@router.get("/counts", summary="Counts of reports by one or two dimensions, confirmed and suggested apart",
            responses=error_responses(401, 403, 422, 429))
def get_counts(request: Request, session: SessionDep,
               principal: Annotated[Principal, require(Role.ADVISER, Role.DASHBOARD)],
               query: Annotated[CountsQuery, Query()]) -> CountsOut:
    """`by=period&by=target_group`, `period=month|quarter|year`, and every filter of the report list.
    Roles that may not see single cases get small counts suppressed."""
    return service.counts(session, query, request.app.state.local_tz, principal.departments,
                          protect_small=not sees_cases(principal), k=request.app.state.settings.min_cell_count)


@router.get("/trend", summary="Count per period, share of all reports, change from before and last year",
            responses=error_responses(401, 403, 422, 429))
def get_trend(request: Request, session: SessionDep, principal: Aggregates,
              query: Annotated[TrendQuery, Query()]) -> TrendOut:
    """Under any filter of the report list; confirmed only unless include_suggested=true."""
    return service.trend(session, query, request.app.state.local_tz, principal.departments,
                         protect_small=not sees_cases(principal), k=request.app.state.settings.min_cell_count)


@router.get("/collaboration-matrix", summary="Who fails to work with whom: pairs of services and agencies",
            responses=error_responses(401, 403, 422, 429))
def get_matrix(request: Request, session: SessionDep, principal: Aggregates,
               query: Annotated[MatrixQuery, Query()]) -> MatrixOut:
    """Among reports under the filter (by default those in samhandling_barn_unge)."""
    return service.matrix(session, query, request.app.state.local_tz, principal.departments,
                          protect_small=not sees_cases(principal), k=request.app.state.settings.min_cell_count)


@router.get("/recurring", summary="Groups of similar collaboration deviations between the same services",
            responses=error_responses(401, 403, 422, 429))
def get_recurring(request: Request, session: SessionDep, principal: Annotated[Principal, require(Role.ADVISER)],
                  query: Annotated[RecurringQuery, Query()]) -> RecurringOut:
    """Each group with its size, services, units, characteristic words and example report ids."""
    result = service.recurring(session, query, request.app.state.local_tz, principal.departments)
    audit.record(session, request, principal, "stats.recurring",
                 report_ids=[i for g in result.groups for i in g.report_ids], query=query.model_dump(mode="json"))
    return result


@similar_router.get("/{report_id}/similar", summary="Reports that resemble a report (text and services)",
                    responses=error_responses(401, 403, 404, 422, 429))
def get_similar(request: Request, report_id: int, session: SessionDep,
                principal: Annotated[Principal, require(Role.ADVISER)],
                query: Annotated[SimilarQuery, Query()]) -> SimilarOut:
    """Best first, among the most recent reports under the filter; titles are free text, so it is logged."""
    result = service.similar(session, report_id, query, request.app.state.local_tz, principal.departments,
                             query.limit)
    audit.record(session, request, principal, "report.similar",
                 report_ids=[report_id, *(i.report.id for i in result.items)])
    return result


@router.get("/estimate", summary="Collaboration deviations about children: confirmed and estimated",
            responses=error_responses(401, 403, 422, 429))
def get_estimate(request: Request, session: SessionDep,
                 principal: Annotated[Principal, require(Role.ADVISER, Role.DASHBOARD)],
                 query: Annotated[ReportFilter, Query()]) -> EstimateOut:
    """The confirmed count, plus an estimate with a 95 % interval among reports nobody has decided on."""
    return service.estimate_count(session, query, request.app.state.local_tz, principal.departments)
