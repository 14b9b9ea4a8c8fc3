"""A report: its text with the explanation marked, classification, labels, history, similar reports."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from app.audit import service as audit
from app.db import SessionDep
from app.report import service as report_service
from app.report.schemas import ReportListQuery
from app.review import service as review_service
from app.stats import service as stats_service
from app.web import pages, views
from app.web import session as web_session

router = pages.page_router()


def report_context(session: Any, request: Request, current: web_session.Current, report_id: int,
                   extra_ids: Iterable[int] = ()) -> dict[str, Any]:
    """Everything the report view shows; one audit row names every report whose text it shows."""
    departments = current.principal.departments
    report = report_service.get_report(session, report_id, departments)
    detail = report_service.detail(report)
    history = review_service.history(session, report_id, departments)
    audit.record(session, request, current.principal, "report.read", report_ids=[report_id, *extra_ids],
                 detail="web")
    explanation = detail.classification.explanation if detail.classification else []
    return {
        "report": detail, "history": history, "choices": pages.taxonomy_choices(session),
        "labels": pages.labels_of(session), "provenance_words": pages.PROVENANCE_WORDS,
        "decision_words": pages.DECISION_WORDS,
        "title_segments": views.mark_terms(detail.title, explanation),
        "description_segments": views.mark_terms(detail.description, explanation),
        "text_lang": views.language(f"{detail.title} {detail.description}"),
        "ups": [e for e in explanation if e.weight > 0], "downs": [e for e in explanation if e.weight < 0],
        "seen_review": history.reviews[0].id if history.reviews else 0,
        "audit_sample": review_service.in_audit_sample(report, pages.settings_of(request).audit_sample_share),
    }



@router.get("/avvik/{report_id}")
def report_page(request: Request, report_id: int, session: SessionDep, current: pages.Adviser) -> HTMLResponse:
    """A report: text with the explanation marked, classification, labels with provenance, history, decision."""
    context = report_context(session, request, current, report_id)
    return pages.render(request, "report.html", {**context, "from_queue": False, "saved": request.query_params.get(
        "lagret") == "1"}, current=current)


@router.get("/avvik/{report_id}/lignende")
def similar_fragment(request: Request, report_id: int, session: SessionDep, current: pages.Adviser) -> HTMLResponse:
    """Reports like this one (loaded after the report by htmx: comparing texts is the slowest part)."""
    departments = current.principal.departments
    result = stats_service.similar(session, report_id, ReportListQuery(), request.app.state.local_tz, departments, 5)
    audit.record(session, request, current.principal, "report.similar",
                 report_ids=[report_id, *(i.report.id for i in result.items)], detail="web")
    return pages.render(request, "partials/similar.html", {"similar": result.items}, current=current)
