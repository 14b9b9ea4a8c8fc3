"""Avvik: the report list with every filter in the URL, free-text search by POST, and exports."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from app.audit import service as audit
from app.db import SessionDep, SessionMakerDep
from app.dependencies import LocalTzDep
from app.errors import FieldError, InvalidInput
from app.report import service as report_service
from app.report.schemas import ReportListQuery
from app.web import pages
from app.web import session as web_session

router = pages.page_router()


LIST_QUERY_FIELDS = pages.FILTER_FIELDS | {"sort", "order", "cursor", "q", "include_description"}


def list_page_response(request: Request, session: Any, current: web_session.Current,
                       items: Iterable[tuple[str, Any]]) -> HTMLResponse:
    """Avvik: the filters as a form, a page of reports, cursor links and the download buttons."""
    parsed = pages.parse(ReportListQuery, pages.filter_values(items, LIST_QUERY_FIELDS))
    errors = dict(parsed.errors)
    page = None
    if not errors:
        try:
            page = report_service.list_reports(session, parsed.query, request.app.state.local_tz,
                                               current.principal.departments, request.app.state.cursor_key)
        except InvalidInput as exc:
            errors.update(pages.domain_field_errors(exc))
    if page is not None:
        audit.record(session, request, current.principal, "report.list", report_ids=[r.id for r in page.items],
                     query=parsed.query.model_dump(mode="json", exclude={"cursor"}))
    filters = pages.request_filter_items(parsed.query)
    next_qs = None
    if page is not None and page.next_cursor:
        next_qs = urlencode([*filters, ("cursor", page.next_cursor)])
    return pages.render(request, "list.html", {
        "page": page, "query": parsed.query, "errors": errors, "choices": pages.taxonomy_choices(session),
        "labels": pages.labels_of(session), "filter_qs": urlencode(filters), "next_qs": next_qs,
        "searched": bool(parsed.query.q), "field_words": pages.FIELD_WORDS, "request_items": filters,
    }, current=current, status=422 if errors else 200)


@router.get("/avvik")
def list_page(request: Request, session: SessionDep, current: pages.Adviser) -> HTMLResponse:
    """The list with its filters from the URL (bookmarkable); free-text search comes by POST."""
    items = [(k, v) for k, v in request.query_params.multi_items() if k != "q"]
    return list_page_response(request, session, current, items)


@router.post("/avvik")
def list_search(request: Request, session: SessionDep, current: pages.Adviser, form: pages.FormDep) -> HTMLResponse:
    """The list with a free-text search: `q` travels in the body, never in a URL (logs, history, proxies)."""
    return list_page_response(request, session, current, [(k, v) for k, v in form.multi_items()])


@router.post("/avvik/eksport")
def list_export(request: Request, session: SessionDep, maker: SessionMakerDep, local: LocalTzDep,
                current: pages.Adviser, form: pages.FormDep) -> Response:
    """Every report under the filter as CSV or XLSX, audited as the API's exports."""
    wanted = str(form.get("format", "csv"))
    if wanted not in ("csv", "xlsx"):
        raise InvalidInput("format", [FieldError(field="format", reason="csv eller xlsx")])
    parsed = pages.parse(ReportListQuery, pages.filter_values(form.multi_items(), LIST_QUERY_FIELDS))
    if parsed.errors:
        raise InvalidInput("filter", [FieldError(field=k, reason=v) for k, v in parsed.errors.items()])
    # People download from the pages: Norwegian headings.
    return report_service.start_export(session, maker, local, request, current.principal, parsed.query, wanted,
                                       "nb")
