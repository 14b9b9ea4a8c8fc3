"""Til vurdering: the review queue, its panel, and decisions (from the queue or a report page)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from app.audit import service as audit
from app.auth.principal import Principal
from app.db import SessionDep
from app.errors import InvalidInput, PreconditionFailed
from app.review import service as review_service
from app.review.models import Decision
from app.review.schemas import QueueItem, ReviewIn, ReviewQueueQuery
from app.web import pages
from app.web import session as web_session
from app.web.report import report_context

router = pages.page_router()


QUEUE_FIELDS = pages.FILTER_FIELDS | {"order"}


def queue_query(items: Iterable[tuple[str, Any]]) -> pages.Parsed:
    """The queue's filters and order from the URL (or the hidden field of a decision form)."""
    return pages.parse(ReviewQueueQuery, pages.filter_values(items, QUEUE_FIELDS))



def queue_context(session: Any, request: Request, current: web_session.Current, parsed: pages.Parsed, pos: int
                  ) -> dict[str, Any]:
    """The queue's counter and list, and the report at position `pos` with its decision form."""
    share = pages.settings_of(request).audit_sample_share
    query = parsed.query.model_copy(update={"limit": pages.QUEUE_WINDOW, "cursor": None})
    page = review_service.review_queue(session, query, request.app.state.local_tz, current.principal.departments,
                                       share, request.app.state.cursor_key)
    items = page.items
    pos = max(0, min(pos, len(items) - 1))
    if not items:
        audit.record(session, request, current.principal, "review.queue", report_ids=[], detail="web")
    return window_context(session, request, current, parsed, [i.report.id for i in items], items[:pages.SHOWN], pos,
                          page.next_cursor is not None)


def window_context(session: Any, request: Request, current: web_session.Current, parsed: pages.Parsed,
                   window: list[int], shown: list[QueueItem], pos: int, more: bool) -> dict[str, Any]:
    """The queue panel for a window of the queue (report ids; `shown`: its first SHOWN as queue items; `more`:
    the queue goes on beyond it) at position `pos`."""
    context: dict[str, Any] = {
        "items": shown, "left": len(window), "more": more, "pos": pos,
        "queue_qs": urlencode([(k, v) for k, v in pages.request_filter_items(parsed.query)]), "errors": parsed.errors,
        "query": parsed.query, "choices": pages.taxonomy_choices(session), "labels": pages.labels_of(session),
        "from_queue": True, "window": ",".join(map(str, window)),
    }
    if window:
        context.update(report_context(session, request, current, window[pos],
                                      extra_ids=[i.report.id for i in shown]))
    return context


def next_in_window(session: Any, request: Request, current: web_session.Current, parsed: pages.Parsed,
                   form: FormData, decided: int) -> dict[str, Any] | None:
    """After a decision in the queue: the panel of the next report of the window the page holds (its ids come
    with the form), checked to be still waiting and visible, without reading the queue again. None when no
    report after the decided one is left in the window: then the queue is read anew."""
    held = [int(part) for part in str(form.get("window", "")).split(",")[:pages.QUEUE_WINDOW]
            if part.isdigit() and len(part) <= 9]
    after = set(held[held.index(decided) + 1:]) if decided in held else set()
    departments, share = current.principal.departments, pages.settings_of(request).audit_sample_share
    window = review_service.still_waiting(session, list(dict.fromkeys(i for i in held if i != decided)),
                                          departments, share)
    following = [n for n, report_id in enumerate(window) if report_id in after]
    if not following:
        return None
    shown = review_service.queue_items(session, window[:pages.SHOWN], departments, share)
    return window_context(session, request, current, parsed, window, shown, following[0],
                          form.get("more") == "1")




@router.get("/vurdering")
def queue_page(request: Request, session: SessionDep, current: pages.Adviser, pos: int = 0) -> HTMLResponse:
    """Til vurdering: the review queue, its counter, and the first report with its decision form."""
    parsed = queue_query(request.query_params.multi_items())
    return pages.render(request, "queue.html", queue_context(session, request, current, parsed, pos), current=current,
                  status=422 if parsed.errors else 200)


@router.get("/vurdering/panel")
def queue_panel(request: Request, session: SessionDep, current: pages.Adviser, pos: int = 0) -> HTMLResponse:
    """The report at a queue position, for htmx (next and previous without a page load)."""
    parsed = queue_query(request.query_params.multi_items())
    return pages.render(request, "partials/queue_panel.html", queue_context(session, request, current, parsed, pos),
                  current=current)



class DecidedMeanwhile(Exception):
    """Someone decided on the report after this page was shown: the decision was not recorded."""

    def __init__(self, latest: Any) -> None:
        super().__init__("decided meanwhile")
        self.latest = latest


def decide(session: Any, request: Request, principal: Principal, report_id: int, body: ReviewIn,
           seen_review: int) -> None:
    """Record a decision unless someone else decided since the page was shown (then DecidedMeanwhile).

    The one place the pages call the review service: the page carries the id of the latest review it showed,
    and the decision goes with that review state as its If-Match, as an API client's would, so a colleague's
    decision made meanwhile is never overwritten (the review service locks the report while it checks)."""
    try:
        review_service.record_decision(session, request, principal, report_id, body,
                                       pages.settings_of(request).audit_sample_share,
                                       if_match=[review_service.version_of(seen_review)])
    except PreconditionFailed:
        history = review_service.history(session, report_id, principal.departments)
        raise DecidedMeanwhile(history.reviews[0] if history.reviews else None) from None


@router.post("/avvik/{report_id}/vurdering")
def post_decision(request: Request, report_id: int, current: pages.Adviser, session: SessionDep,
                  form: pages.FormDep) -> Response:
    """A decision from the report page or the queue; in the queue, the next report comes back (htmx)."""
    decision = str(form.get("decision", ""))
    errors: dict[str, str] = {}
    body: ReviewIn | None = None
    values: dict[str, Any] = {"decision": decision, "comment": str(form.get("comment", "")).strip() or None}
    if decision == Decision.CORRECT.value:
        values.update(category=str(form.get("category", "")) or None,
                      target_groups=[str(v) for v in form.getlist("target_groups")] or None,
                      services=[str(v) for v in form.getlist("services")] or None)
    try:
        body = ReviewIn.model_validate(values)
    except ValidationError as exc:
        for error in exc.errors():
            # A whole-model error is the rule that a correction must say what is right.
            field = str(error["loc"][0]) if error["loc"] else "correction"
            if field == "decision":
                errors["decision"] = "Velg en beslutning."
            elif field == "comment":
                errors["comment"] = "Kommentaren er for lang (høyst 2000 tegn)."
            else:
                errors["correction"] = "Ved retting må du velge kategori, målgrupper eller tjenester."
    seen = int(str(form.get("seen_review", "0")) or 0) if str(form.get("seen_review", "0")).isdigit() else -1
    from_queue = form.get("from_queue") == "1"
    meanwhile = None
    status = 200
    if body is not None:
        try:
            decide(session, request, current.principal, report_id, body, seen)
        except DecidedMeanwhile as exc:
            meanwhile, status = exc.latest, 409
        except InvalidInput as exc:
            errors.update({"correction": "Ukjent eller utgått kode: " + "; ".join(f.reason for f in exc.fields)})
    if errors:
        status = 422
    if from_queue:
        parsed = queue_query(filter_values_from_qs(str(form.get("queue_qs", ""))))
        pos = int(str(form.get("pos", "0"))) if str(form.get("pos", "0")).isdigit() else 0
        if status == 200:
            context = (next_in_window(session, request, current, parsed, form, report_id)
                       or queue_context(session, request, current, parsed, pos))
            assert body is not None
            context["announcement"] = f"{pages.DECISION_WORDS[body.decision.value]}: lagret. {context['left']} igjen."
        else:
            context = queue_context(session, request, current, parsed, pos)
            context.update(form_errors=errors, meanwhile=meanwhile, report=context.get("report"))
            if context.get("report") is None or context["report"].id != report_id:
                context.update(report_context(session, request, current, report_id))
        template = "partials/queue_panel.html" if request.headers.get("HX-Request") else "queue.html"
        return pages.render(request, template, context, current=current, status=status)
    if status == 200:
        return RedirectResponse(f"/avvik/{report_id}?lagret=1", status_code=303)
    context = report_context(session, request, current, report_id)
    context.update(form_errors=errors, meanwhile=meanwhile, from_queue=False)
    return pages.render(request, "report.html", context, current=current, status=status)


def filter_values_from_qs(qs: str) -> list[tuple[str, str]]:
    """The pairs of a query string carried in a hidden field."""
    return parse_qsl(qs[:2000], keep_blank_values=False)
