"""Oversikt, the start page: flags waiting, confirmed cases this month and year, the estimate, a trend."""

from __future__ import annotations

from datetime import date, datetime

from fastapi import Request
from fastapi.responses import HTMLResponse

from app.db import SessionDep
from app.review import service as review_service
from app.review.labels import TARGET_CATEGORY
from app.review.schemas import ReviewQueueQuery
from app.stats import service as stats_service
from app.stats.schemas import EstimateQuery, TrendQuery
from app.web import pages, views
from app.web.statistics import default_period

router = pages.page_router()


@router.get("/")
def overview_page(request: Request, session: SessionDep, current: pages.Adviser) -> HTMLResponse:
    """Oversikt: flags waiting, confirmed cases this month and year, the estimate in words, a trend."""
    local, departments = request.app.state.local_tz, current.principal.departments
    today = datetime.now(local).date()
    share = pages.settings_of(request).audit_sample_share
    waiting = review_service.review_queue(session, ReviewQueueQuery(limit=pages.QUEUE_WINDOW), local, departments,
                                          share, request.app.state.cursor_key)
    year = stats_service.estimate_count(session, EstimateQuery(reported_from=date(today.year, 1, 1),
                                                               reported_to=today), local, departments)
    month = stats_service.estimate_count(session, EstimateQuery(reported_from=today.replace(day=1),
                                                                reported_to=today), local, departments)
    first, _ = default_period(today)
    trend = stats_service.trend(session, TrendQuery(category=TARGET_CATEGORY, reported_from=first,
                                                    reported_to=today), local, departments)
    points = trend.points
    return pages.render(request, "overview.html", {
        "waiting": len(waiting.items), "more": waiting.next_cursor is not None, "year": year, "month": month,
        "today": today, "estimate_words": views.estimate_words(year), "trend": trend,
        "trend_chart": views.line([p.period for p in points], [p.count for p in points], "Bekreftede saker")
        if points else None,
    }, current=current)
