"""Statistikk: counts by month and target group, trend, collaboration matrix, recurring failures, the
estimate; each part also as CSV."""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime
from functools import partial
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from app.audit import service as audit
from app.db import SessionDep
from app.errors import FieldError, InvalidInput, NotFound
from app.export import csv_response
from app.report import service as report_service
from app.stats import export as stats_export
from app.stats import service as stats_service
from app.stats.schemas import CountsQuery, Dimension, EstimateQuery, MatrixQuery, RecurringQuery, TrendQuery
from app.taxonomy.service import load_taxonomy
from app.web import pages, views
from app.web import session as web_session

router = pages.page_router()


# Part in the URL -> (figure name, its CSV table). Each table takes the one figure type it is named after.
STATS_PARTS: dict[str, tuple[str, Callable[[Any], stats_export.Table]]] = {
    "antall": ("counts", stats_export.counts_table),
    "trend": ("trend", stats_export.trend_table),
    "samhandling": ("matrix", stats_export.matrix_table),
    "gjentakende": ("recurring", stats_export.recurring_table),
    "estimat": ("estimate", stats_export.estimate_table),
}
# The parts in the page's order: (part, heading id, heading). A part's fragment starts with the same heading.
PART_HEADINGS = [("estimat", "estimat", "Hvor mange saker om samhandling og barn er det?"),
                 ("antall", "per-maned", "Saker per måned og målgruppe"),
                 ("trend", "trend", "Utvikling"),
                 ("samhandling", "samhandling", "Hvem svikter i samarbeidet med hvem"),
                 ("gjentakende", "gjentakende", "Svikt som gjentar seg")]


def default_period(today: date) -> tuple[date, date]:
    """The last twelve months, whole months."""
    months = today.year * 12 + today.month - 1 - 11
    return date(months // 12, months % 12 + 1, 1), today


def stats_filter(request: Request) -> pages.Parsed:
    """The statistics filter from the URL, defaulting to the last twelve months."""
    values = pages.filter_values(request.query_params.multi_items(), pages.FILTER_FIELDS)
    if "reported_from" not in values and "reported_to" not in values:
        first, last = default_period(datetime.now(request.app.state.local_tz).date())
        values.update(reported_from=first.isoformat(), reported_to=last.isoformat())
    return pages.parse(EstimateQuery, values)


def figure(name: str, session: Any, local: Any, departments: frozenset[str] | None, f: Any) -> Any:
    """One figure of the statistics page (`name` of STATS_PARTS), from the API's statistics services."""
    common = f.model_dump(exclude={"format"})
    if name == "counts":
        by = [Dimension.PERIOD, Dimension.TARGET_GROUP]
        return stats_service.counts(session, CountsQuery(**common, by=by), local, departments,
                                    protect_small=False, k=1)
    if name == "trend":
        return stats_service.trend(session, TrendQuery(**common), local, departments)
    if name == "matrix":
        return stats_service.matrix(session, MatrixQuery(**common), local, departments)
    if name == "recurring":
        return stats_service.recurring(session, RecurringQuery(**common), local, departments)
    return stats_service.estimate_count(session, f, local, departments)


def statistics(session: Any, request: Request, current: web_session.Current, f: Any) -> dict[str, Any]:
    """Every figure of the statistics page at once, side by side when it can (the page without JavaScript)."""
    local, departments = request.app.state.local_tz, current.principal.departments
    return side_by_side(request, session, {
        name: partial(_figure_in, name, local, departments, f) for name, _ in STATS_PARTS.values()})


def _figure_in(name: str, local: Any, departments: frozenset[str] | None, f: Any, session: Any) -> Any:
    return figure(name, session, local, departments, f)


# Read-only calls of one page that run side by side (the statistics page's five take 70-150 ms each at a
# million reports). Shared by all requests, so that a burst of pages cannot take every pooled connection.
READS = ThreadPoolExecutor(max_workers=6, thread_name_prefix="avvik-web-read")


def side_by_side(request: Request, session: Any, calls: dict[str, Callable[[Any], Any]]) -> dict[str, Any]:
    """Each call's answer by name. Each runs in a session of its own, on its own connection, at the same time
    as the others when the app has sessions for that (app.state.read_sessionmaker); else one after another in
    the request's session (a test's app, whose data lives in one connection's transaction)."""
    maker = request.app.state.read_sessionmaker
    if maker is None:
        return {name: call(session) for name, call in calls.items()}

    def run(call: Callable[[Any], Any]) -> Any:
        with maker() as own:
            try:
                return call(own)
            finally:
                own.rollback()  # it only read; nothing to keep

    futures = {name: READS.submit(contextvars.copy_context().run, run, call) for name, call in calls.items()}
    return {name: future.result() for name, future in futures.items()}


def counts_grid(counts: Any, labels: dict[str, dict[str, str]]) -> dict[str, Any]:
    """The month × target group table and its stacked-bar chart (top seven groups, the rest as one)."""
    periods = sorted({r.key.get("period") for r in counts.rows if r.key.get("period")})
    groups: dict[str, dict[str, int]] = {}
    for row in counts.rows:
        period, group = row.key.get("period"), row.key.get("target_group") or "uten_malgruppe"
        value = (row.with_suggestions or row.confirmed).value
        if period and value:
            groups.setdefault(group, {})[period] = value
    totals = sorted(groups, key=lambda g: -sum(groups[g].values()))
    shown, rest = totals[:7], totals[7:]
    series = [(labels["target_group"].get(g, "Uten målgruppe"), [groups[g].get(p, 0) for p in periods]) for g in shown]
    if rest:
        series.append(("Andre målgrupper", [sum(groups[g].get(p, 0) for g in rest) for p in periods]))
    return {"periods": periods, "groups": totals, "cells": groups,
            "chart": views.stacked_bars(periods, series) if periods else None}


def shown(name: str, value: Any, labels: dict[str, dict[str, str]]) -> dict[str, Any]:
    """What a figure's section of the page needs besides the figure itself (charts, heat map, words)."""
    if name == "counts":
        return {"grid": counts_grid(value, labels)}
    if name == "trend":
        points = value.points
        return {"trend_chart": views.line([p.period for p in points], [p.count for p in points], "Antall")
                if points else None}
    if name == "matrix":
        pairs = value.service_pairs
        names = sorted({p.a for p in pairs[:40]} | {p.b for p in pairs[:40]})[:12]
        cells, side = views.heatmap(names, {(p.a, p.b): p.count for p in pairs}, labels["service"])
        return {"heat_names": names, "heat_cells": cells, "heat_side": side}
    if name == "estimate":
        return {"estimate_words": views.estimate_words(value)}
    return {}


def audit_recurring(session: Any, request: Request, current: web_session.Current, f: Any, recurring: Any) -> None:
    """The reports a page showed as examples of recurring failures are recorded as read."""
    audit.record(session, request, current.principal, "stats.recurring", detail="web",
                 report_ids=[i for g in recurring.groups for i in g.example_ids],
                 query=f.model_dump(mode="json", exclude={"format"}))


@router.get("/statistikk")
def stats_page(request: Request, session: SessionDep, current: pages.Adviser) -> HTMLResponse:
    """Statistikk: counts by month and target group, trend, who fails with whom, recurring, the estimate. The
    page comes at once with its filter; each part follows as a fragment of its own (/statistikk/del/{part}),
    so the parts are computed side by side by whichever workers are free. With `alle=1` (the link for browsers
    without JavaScript) every part is in the page itself."""
    parsed = stats_filter(request)
    errors = dict(parsed.errors)
    labels = pages.labels_of(session)
    filter_qs = urlencode(pages.request_filter_items(parsed.query))
    context: dict[str, Any] = {"query": parsed.query, "errors": errors, "choices": pages.taxonomy_choices(session),
                               "labels": labels, "field_words": pages.FIELD_WORDS, "filter_qs": filter_qs,
                               "parts": PART_HEADINGS, "inline": request.query_params.get("alle") == "1"}
    if not errors:
        try:
            # The filter's codes are checked here, so that a wrong one is an error in the form, not in five parts.
            report_service.resolve_filter(load_taxonomy(session), parsed.query, request.app.state.local_tz,
                                          current.principal.departments)
            if context["inline"]:
                figures = statistics(session, request, current, parsed.query)
                audit_recurring(session, request, current, parsed.query, figures["recurring"])
                for name, value in figures.items():
                    context.update(shown(name, value, labels))
                context.update(figures)
        except InvalidInput as exc:
            errors.update(pages.domain_field_errors(exc))
    return pages.render(request, "stats.html", context, current=current, status=422 if errors else 200)


def one_part(request: Request, session: Any, current: web_session.Current, part: str) -> tuple[str, Any, Any]:
    """(figure name, figure, filter) of one part named in the URL, under the URL's filter; 404 for no such part,
    422 for a bad filter."""
    if part not in STATS_PARTS:
        raise NotFound("no such page")
    parsed = stats_filter(request)
    if parsed.errors:
        raise InvalidInput("filter", [FieldError(field=k, reason=v) for k, v in parsed.errors.items()])
    name = STATS_PARTS[part][0]
    return name, figure(name, session, request.app.state.local_tz, current.principal.departments,
                        parsed.query), parsed.query


@router.get("/statistikk/del/{part}")
def stats_part(request: Request, part: str, session: SessionDep, current: pages.Adviser) -> HTMLResponse:
    """One part of the statistics page: the fragment htmx puts in the page, or (asked for without htmx) a page
    of its own."""
    name, value, query = one_part(request, session, current, part)
    if name == "recurring":
        audit_recurring(session, request, current, query, value)
    labels = pages.labels_of(session)
    context = {name: value, **shown(name, value, labels), "labels": labels, "query": query,
               "filter_qs": urlencode(pages.request_filter_items(query)), "part": f"partials/stats_{part}.html"}
    template = context["part"] if request.headers.get("HX-Request") else "stats_part.html"
    return pages.render(request, template, context, current=current)


@router.get("/statistikk/{part}.csv")
def stats_csv(request: Request, part: str, session: SessionDep, current: pages.Adviser) -> Response:
    """The numbers of one part of the statistics page, exactly as shown, as CSV."""
    name, value, _ = one_part(request, session, current, part)
    if name == "recurring":
        audit.record(session, request, current.principal, "stats.recurring", detail="web.csv",
                     report_ids=[i for g in value.groups for i in g.report_ids])
    columns, rows = STATS_PARTS[part][1](value)
    return csv_response(f"statistikk-{part}.csv", columns, rows)
