"""Page routes for quality advisers: parse, authorise (the API's roles), call the API's service functions,
render a template. No SQL here and no calls to the API over HTTP."""

from __future__ import annotations

import contextvars
import secrets
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.audit import service as audit
from app.auth.dependencies import Authorize
from app.auth.principal import Principal, Role
from app.db import SessionDep
from app.errors import DomainError, FieldError, InvalidInput, NotFound, PreconditionFailed, TooManyRequests
from app.export import csv_response
from app.registry import service as registry_service
from app.report import service as report_service
from app.report.schemas import ReportListQuery
from app.review import service as review_service
from app.review.models import Decision
from app.review.schemas import QueueItem, QueueOrder, ReviewIn, ReviewQueueQuery
from app.settings import Settings
from app.stats import export as stats_export
from app.stats import service as stats_service
from app.stats.schemas import CountsQuery, Dimension, EstimateQuery, MatrixQuery, RecurringQuery, TrendQuery
from app.taxonomy.models import CodeKind
from app.taxonomy.service import load_taxonomy
from app.web import entra, views
from app.web import session as web_session
from app.web.assets import serve_asset
from app.web.security import NOT_PAGES

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
TEMPLATES.env.trim_blocks = TEMPLATES.env.lstrip_blocks = True  # no template indentation in the page weight
# The queue page reads this many waiting reports (its counter says "over 100" beyond): every decision answers
# with the next report and the counter, so this read is in the decision's round trip.
QUEUE_WINDOW = 100
SHOWN = 20  # how many of the window's reports the panel lists, with their titles, under "De neste i køen"
TARGET_CATEGORY = "samhandling_barn_unge"
SIGNIN_COOKIE = "avvik_innlogging"  # double-submit token of the sign-in form (login CSRF)
DECISION_WORDS = {"is_case": "Er en sak", "not_case": "Ikke en sak", "correct": "Rettet"}
PROVENANCE_WORDS = {"reporter": "melder", "classifier": "forslag fra klassifisereren", "adviser": "rådgiver"}
# Paths a person reaches before signing in (the route-table check in tests/app/test_auth.py knows them).
PUBLIC_PATHS = {"/logg-inn", "/logg-inn/lenke/{token}", "/logg-inn/entra", "/logg-inn/entra/svar"}


class SigninRequired(Exception):
    """No live session: send the person to the sign-in page."""


class NoPages(Exception):
    """Signed in with a role that has no pages (dashboard, integration) or not this page (model: admin)."""


class PageRoute(APIRoute):
    """Errors on a page are pages: the same statuses as the API, rendered in Norwegian."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await original(request)
            except SigninRequired:
                if request.url.path == "/okt/status":
                    return render(request, "partials/session_status.html", {"expired": True}, current=None)
                target = "/logg-inn?" + urlencode({"neste": request.url.path})
                if request.headers.get("HX-Request"):
                    return Response(status_code=204, headers={"HX-Redirect": target})
                return RedirectResponse(target, status_code=303)
            except NoPages:
                return error_page(request, 403, "Du har ikke tilgang til denne siden",
                                  "Rollen din gir ikke tilgang til sider med avvik. Kontakt en administrator om "
                                  "du trenger tilgang.")
            except DomainError as exc:
                return domain_error_page(request, exc)
            except RequestValidationError:
                return error_page(request, 422, "Ugyldig forespørsel", "Adressen inneholder verdier som ikke "
                                  "kan brukes. Gå tilbake og prøv igjen.")

        return handler


router = APIRouter(include_in_schema=False, route_class=PageRoute)
router.add_route("/static/{name}", serve_asset, methods=["GET"], include_in_schema=False)


def settings_of(request: Request) -> Settings:
    """The app's settings."""
    return request.app.state.settings  # type: ignore[no-any-return]


async def form_csrf(request: Request) -> str | None:
    """The CSRF token of a submitted form (htmx sends it as a header instead)."""
    if request.method in ("GET", "HEAD"):
        return None
    form = await request.form()
    value = form.get(web_session.CSRF_FIELD)
    return value if isinstance(value, str) else None


class PageAuthorize(Authorize):
    """A page's rule: a live session of one of these roles (admin may do everything), the CSRF token on
    anything but GET, and the API's rate limit. Using a page moves the session's end forward."""

    def __init__(self, roles: frozenset[Role], slide: bool = True) -> None:
        super().__init__(roles)
        self.slide = slide

    def __call__(  # type: ignore[override]
        self, request: Request, session: SessionDep, form_token: Annotated[str | None, Depends(form_csrf)] = None,
    ) -> web_session.Current:
        settings = settings_of(request)
        current = web_session.load_session(session, request, settings)
        if current is None:
            raise SigninRequired
        if not current.principal.roles & self.roles:
            raise NoPages
        if request.method not in ("GET", "HEAD") and not web_session.csrf_ok(request, current, form_token):
            raise CsrfRefused
        wait = request.app.state.rate_limiter.acquire(current.principal.actor)
        if wait is not None:
            raise TooManyRequests("for mange forespørsler; vent litt", headers={"Retry-After": str(wait)})
        if self.slide:
            web_session.extend(session, current, settings)
        request.state.principal = current.principal
        return current


class CsrfRefused(DomainError):
    status_code = 403
    error = "csrf"

    def __init__(self) -> None:
        super().__init__("Skjemaet manglet eller hadde feil sikkerhetsnøkkel (CSRF). Last siden på nytt og prøv "
                         "igjen.")


async def form_data(request: Request) -> FormData:
    """The submitted form, read before a (synchronous) route runs in the thread pool."""
    return await request.form()


FormDep = Annotated[FormData, Depends(form_data)]
Adviser = Annotated[web_session.Current, Depends(PageAuthorize(frozenset({Role.ADVISER})))]
AdviserStatus = Annotated[web_session.Current, Depends(PageAuthorize(frozenset({Role.ADVISER}), slide=False))]
Admin = Annotated[web_session.Current, Depends(PageAuthorize(frozenset({Role.ADMIN})))]


def render(request: Request, template: str, context: dict[str, Any], current: web_session.Current | None,
           status: int = 200) -> HTMLResponse:
    """A template with what every page needs (assets, the session, its CSRF token)."""
    settings = settings_of(request)
    base = {"current": current, "asset": request.app.state.web_assets.url, "path": request.url.path,
            "warning_minutes": settings.web_session_warning_minutes, "roles": Role,
            "ts": lambda value: timestamp(value, request.app.state.local_tz), "lang": views.language}
    return TEMPLATES.TemplateResponse(request, template, {**base, **context}, status_code=status)


def error_page(request: Request, status: int, title: str, message: str) -> HTMLResponse:
    """An error as a page (or, for htmx, as the fragment it swaps in)."""
    template = "partials/error.html" if request.headers.get("HX-Request") else "error.html"
    return render(request, template, {"title": title, "message": message, "status": status}, current=None,
                  status=status)


def domain_error_page(request: Request, exc: DomainError) -> HTMLResponse:
    """A domain error in Norwegian; a report of another department reads exactly as a missing one."""
    titles = {404: ("Fant ikke siden", "Det finnes ingen side eller sak på denne adressen som du har tilgang til."),
              403: ("Ikke tillatt", exc.message),
              422: ("Ugyldige verdier", "; ".join(f"{f.field}: {f.reason}" for f in exc.fields) or exc.message),
              429: ("For mange forespørsler", "Vent et minutt og prøv igjen."),
              503: ("Tjenesten er midlertidig utilgjengelig", "Prøv igjen om litt.")}
    title, message = titles.get(exc.status_code, ("Noe gikk galt", "Prøv igjen."))
    response = error_page(request, exc.status_code, title, message)
    if exc.headers and "Retry-After" in exc.headers:
        response.headers["Retry-After"] = exc.headers["Retry-After"]
    return response


def install_not_found_page(app: FastAPI) -> None:
    """A browser asking for a path that nothing serves gets the 404 page; API clients, and every path of the
    API, keep the JSON error."""
    answer_json = app.exception_handlers[StarletteHTTPException]

    async def not_found(request: Request, exc: Exception) -> Response:
        if (isinstance(exc, StarletteHTTPException) and exc.status_code == 404
                and not request.url.path.startswith(NOT_PAGES) and "text/html" in request.headers.get("accept", "")):
            return domain_error_page(request, NotFound("no such page"))
        response: Response = await answer_json(request, exc)
        return response

    app.add_exception_handler(StarletteHTTPException, not_found)


def safe_next(value: str | None) -> str:
    """Only a path on this site may be the page after sign-in (no open redirect)."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


# ---- sign-in and the session --------------------------------------------------------------------------------

@router.get("/logg-inn")
def signin_page(request: Request, neste: str | None = None) -> HTMLResponse:
    """The sign-in page: Entra ID, and (for local use) an API key."""
    return signin_form(request, neste, None, 200)


def signin_form(request: Request, neste: str | None, error: str | None, status: int) -> HTMLResponse:
    """The sign-in form with a fresh double-submit token."""
    settings = settings_of(request)
    token = secrets.token_urlsafe(24)
    response = render(request, "signin.html", {
        "neste": safe_next(neste), "error": error, "signin_token": token,
        "key_signin": web_session.key_signin_enabled(settings), "entra": web_session.entra_enabled(settings),
    }, current=None, status=status)
    response.set_cookie(SIGNIN_COOKIE, token, httponly=True, secure=settings.web_cookie_secure, samesite="strict",
                        path="/logg-inn", max_age=1800)
    return response


@router.post("/logg-inn")
def signin_with_key(request: Request, session: SessionDep, api_key: Annotated[str, Form(max_length=200)] = "",
                    signin_token: Annotated[str, Form(max_length=100)] = "",
                    neste: Annotated[str, Form(max_length=500)] = "/") -> Response:
    """Sign in with an adviser's or admin's API key (local use and tests)."""
    settings = settings_of(request)
    if not web_session.key_signin_enabled(settings):
        return signin_form(request, neste, "Innlogging med API-nøkkel er slått av her. Logg inn med Entra ID.", 403)
    cookie = request.cookies.get(SIGNIN_COOKIE, "")
    if not cookie or not secrets.compare_digest(cookie, signin_token):
        return signin_form(request, neste, "Innloggingsskjemaet var utløpt. Prøv igjen.", 403)
    if not api_key.strip():
        return signin_form(request, neste, "Skriv inn API-nøkkelen.", 422)
    principal = web_session.signin_with_key(session, api_key)
    if principal is None:
        return signin_form(request, neste, "Nøkkelen er ukjent eller trukket tilbake.", 401)
    return begin_session(request, session, principal, neste)


def begin_session(request: Request, session: Any, principal: Principal, neste: str | None) -> Response:
    """Start a session for a signed-in person with a page role, and go on to the page they wanted."""
    settings = settings_of(request)
    if not web_session.may_see_pages(principal):
        return signin_form(request, neste, "Rollen din gir ingen sider i denne tjenesten (bare API-tilgang).", 403)
    token = web_session.start_session(session, principal, settings)
    audit.record(session, request, principal, "web.signin")
    response = RedirectResponse(safe_next(neste), status_code=303)
    web_session.set_cookie(response, token, settings)
    response.delete_cookie(SIGNIN_COOKIE, path="/logg-inn")
    return response


@router.get("/logg-inn/lenke/{token}")
def signin_link_page(request: Request, token: str) -> HTMLResponse:
    """A one-time sign-in link asks for a click first, so that link scanners in e-mail do not use it up."""
    return render(request, "signin_link.html", {"token": token}, current=None)


@router.post("/logg-inn/lenke/{token}")
def signin_with_link(request: Request, token: str, session: SessionDep) -> Response:
    """Redeem a one-time link from `avvik web signin-link`."""
    if not web_session.key_signin_enabled(settings_of(request)):
        return signin_form(request, "/", "Innlogging med lenke er slått av her. Logg inn med Entra ID.", 403)
    principal = web_session.redeem_link(session, token)
    if principal is None:
        return signin_form(request, "/", "Lenken er ukjent, utløpt eller allerede brukt. Lag en ny.", 401)
    return begin_session(request, session, principal, "/")


def redirect_uri(request: Request) -> str:
    """Where Entra ID sends the person back (must match the app registration)."""
    return settings_of(request).oidc_redirect_uri or str(request.url_for("entra_callback"))


def provider(request: Request) -> entra.ProviderMetadata:
    """The identity provider's discovery document (cached per process)."""
    state = request.app.state
    if getattr(state, "web_provider", None) is None:
        state.web_provider = entra.ProviderMetadata(entra.metadata_url(settings_of(request)))
    return state.web_provider  # type: ignore[no-any-return]


@router.get("/logg-inn/entra")
def entra_signin(request: Request, session: SessionDep) -> Response:
    """Send the browser to Entra ID with a one-time state, a nonce and a PKCE challenge."""
    if not web_session.entra_enabled(settings_of(request)):
        return signin_form(request, "/", "Entra ID er ikke satt opp her.", 404)
    url = entra.begin(session, settings_of(request), provider(request), redirect_uri(request))
    return RedirectResponse(url, status_code=303)


@router.get("/logg-inn/entra/svar", name="entra_callback")
def entra_callback(request: Request, session: SessionDep, code: str | None = None, state: str | None = None,
                   error: str | None = None) -> Response:
    """Entra ID's answer: redeem the code, verify the ID token, start a session."""
    if not web_session.entra_enabled(settings_of(request)) or request.app.state.jwks is None:
        return signin_form(request, "/", "Entra ID er ikke satt opp her.", 404)
    if error or not code or not state:
        return signin_form(request, "/", "Innloggingen ble avbrutt hos identitetstjenesten.", 400)
    try:
        principal = entra.finish(session, settings_of(request), provider(request), request.app.state.jwks, code,
                                 state, redirect_uri(request))
    except entra.SigninFailed as exc:
        return signin_form(request, "/", str(exc), 401)
    return begin_session(request, session, principal, "/")


@router.post("/logg-ut")
def signout(request: Request, session: SessionDep, current: Adviser) -> Response:
    """End the session at once (in the table, so every tab and process sees it) and drop the cookie."""
    web_session.end_session(session, current)
    audit.record(session, request, current.principal, "web.signout")
    response = RedirectResponse("/logg-inn?utlogget=1", status_code=303)
    web_session.clear_cookie(response, settings_of(request))
    return response


@router.get("/okt/status")
def session_status(request: Request, current: AdviserStatus) -> HTMLResponse:
    """Polled by the page (without extending the session): a warning with an extend button near the end."""
    left = web_session.minutes_left(current)
    return render(request, "partials/session_status.html",
                  {"minutes_left": left, "ends_at": current.row.expires_at, "expired": False}, current=current)


@router.post("/okt/forleng")
def session_extend(request: Request, current: Adviser) -> HTMLResponse:
    """Extend the session (the dependency has already moved its end forward)."""
    return render(request, "partials/session_status.html", {"minutes_left": web_session.minutes_left(current),
                                                            "ends_at": current.row.expires_at, "expired": False,
                                                            "extended": True}, current=current)


# ---- filters --------------------------------------------------------------------------------------------------

LIST_FIELDS = {"target_group", "service", "status"}
FILTER_FIELDS = {"category", "target_group", "children_and_youth", "service", "department", "agency", "unit",
                 "status", "reported_from", "reported_to", "include_suggested", "provenance"}
FIELD_WORDS = {"category": "Kategori", "target_group": "Målgruppe", "service": "Tjeneste", "department":
               "Byrådsavdeling", "agency": "Etat", "unit": "Enhet", "status": "Status", "reported_from": "Meldt fra",
               "reported_to": "Meldt til", "q": "Fritekst", "children_and_youth": "Barn og unge",
               "include_suggested": "Ta med forslag", "provenance": "Kilde", "order": "Rekkefølge",
               "sort": "Sorter etter", "cursor": "Side"}


def filter_values(items: Iterable[tuple[str, Any]], allowed: set[str]) -> dict[str, Any]:
    """Form or URL values as a filter: empty fields left out, repeatable ones as lists."""
    values: dict[str, Any] = {}
    for key, value in items:
        if key not in allowed or not isinstance(value, str) or not value.strip():
            continue
        if key in LIST_FIELDS:
            values.setdefault(key, []).append(value)
        else:
            values[key] = value
    return values


@dataclass
class Parsed:
    """A validated query, or the errors of each field (shown next to the field)."""

    query: Any
    errors: dict[str, str]


def parse(model: type[BaseModel], values: dict[str, Any]) -> Parsed:
    """Validate filter values; errors by field name, never echoing the value."""
    try:
        return Parsed(model.model_validate(values), {})
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "filter"
            errors.setdefault(field, norwegian_reason(error.get("type", ""), error.get("msg", "")))
        return Parsed(model.model_validate({k: v for k, v in values.items() if k not in errors}), errors)


def norwegian_reason(kind: str, message: str) -> str:
    """A validation message in Norwegian, for the kinds the filters can produce."""
    if "date" in kind or "ISO 8601" in message:
        return "Skriv datoen som ÅÅÅÅ-MM-DD."
    if "reported_from is after" in message:
        return "Fra-datoen er etter til-datoen."
    if "bool" in kind:
        return "Velg ja eller nei."
    if "too_long" in kind:
        return "For lang verdi."
    if "enum" in kind or "literal" in kind:
        return "Velg en av verdiene i listen."
    return "Ugyldig verdi."


def domain_field_errors(exc: InvalidInput) -> dict[str, str]:
    """A service's 422 as field errors (unknown codes and the like)."""
    return {f.field.split("[")[0]: f"Ukjent eller ugyldig verdi ({f.reason.split(';')[0]})" for f in exc.fields}


def taxonomy_choices(session: Any) -> dict[str, list[tuple[str, str]]]:
    """(code, label) of every active code of each kind, for the pickers."""
    taxonomy = load_taxonomy(session)
    return {kind.value: sorted(((code, taxonomy.codes[kind][code].label) for code in taxonomy.active(kind)),
                               key=lambda pair: pair[1]) for kind in CodeKind}


def labels_of(session: Any) -> dict[str, dict[str, str]]:
    """Every code's label by kind (retired codes too; an agency and a service may share a code)."""
    taxonomy = load_taxonomy(session)
    return {kind.value: {code: row.label for code, row in taxonomy.codes[kind].items()} for kind in CodeKind}


# ---- the queue and the report ---------------------------------------------------------------------------------

QUEUE_FIELDS = FILTER_FIELDS | {"order"}


def queue_query(items: Iterable[tuple[str, Any]]) -> Parsed:
    """The queue's filters and order from the URL (or the hidden field of a decision form)."""
    return parse(ReviewQueueQuery, filter_values(items, QUEUE_FIELDS))


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
        "report": detail, "history": history, "choices": taxonomy_choices(session),
        "labels": labels_of(session), "provenance_words": PROVENANCE_WORDS, "decision_words": DECISION_WORDS,
        "title_segments": views.mark_terms(detail.title, explanation),
        "description_segments": views.mark_terms(detail.description, explanation),
        "text_lang": views.language(f"{detail.title} {detail.description}"),
        "ups": [e for e in explanation if e.weight > 0], "downs": [e for e in explanation if e.weight < 0],
        "seen_review": history.reviews[0].id if history.reviews else 0,
        "audit_sample": review_service.in_audit_sample(report, settings_of(request).audit_sample_share),
    }


def queue_context(session: Any, request: Request, current: web_session.Current, parsed: Parsed, pos: int
                  ) -> dict[str, Any]:
    """The queue's counter and list, and the report at position `pos` with its decision form."""
    share = settings_of(request).audit_sample_share
    query = parsed.query.model_copy(update={"limit": QUEUE_WINDOW, "cursor": None})
    page = review_service.review_queue(session, query, request.app.state.local_tz, current.principal.departments,
                                       share, request.app.state.cursor_key)
    items = page.items
    pos = max(0, min(pos, len(items) - 1))
    if not items:
        audit.record(session, request, current.principal, "review.queue", report_ids=[], detail="web")
    return window_context(session, request, current, parsed, [i.report.id for i in items], items[:SHOWN], pos,
                          page.next_cursor is not None)


def window_context(session: Any, request: Request, current: web_session.Current, parsed: Parsed,
                   window: list[int], shown: list[QueueItem], pos: int, more: bool) -> dict[str, Any]:
    """The queue panel for a window of the queue (report ids; `shown`: its first SHOWN as queue items; `more`:
    the queue goes on beyond it) at position `pos`."""
    context: dict[str, Any] = {
        "items": shown, "left": len(window), "more": more, "pos": pos,
        "queue_qs": urlencode([(k, v) for k, v in request_filter_items(parsed.query)]), "errors": parsed.errors,
        "query": parsed.query, "choices": taxonomy_choices(session), "labels": labels_of(session),
        "from_queue": True, "window": ",".join(map(str, window)),
    }
    if window:
        context.update(report_context(session, request, current, window[pos],
                                      extra_ids=[i.report.id for i in shown]))
    return context


def next_in_window(session: Any, request: Request, current: web_session.Current, parsed: Parsed,
                   form: FormData, decided: int) -> dict[str, Any] | None:
    """After a decision in the queue: the panel of the next report of the window the page holds (its ids come
    with the form), checked to be still waiting and visible, without reading the queue again. None when no
    report after the decided one is left in the window: then the queue is read anew."""
    held = [int(part) for part in str(form.get("window", "")).split(",")[:QUEUE_WINDOW]
            if part.isdigit() and len(part) <= 9]
    after = set(held[held.index(decided) + 1:]) if decided in held else set()
    departments, share = current.principal.departments, settings_of(request).audit_sample_share
    window = review_service.still_waiting(session, list(dict.fromkeys(i for i in held if i != decided)),
                                          departments, share)
    following = [n for n, report_id in enumerate(window) if report_id in after]
    if not following:
        return None
    shown = review_service.queue_items(session, window[:SHOWN], departments, share)
    return window_context(session, request, current, parsed, window, shown, following[0],
                          form.get("more") == "1")


def request_filter_items(query: BaseModel) -> list[tuple[str, str]]:
    """A validated query back as URL pairs (defaults left out), to carry it into links and hidden fields."""
    pairs: list[tuple[str, str]] = []
    for key, value in query.model_dump(mode="json", exclude_defaults=True).items():
        if key in ("limit", "cursor", "format", "q"):
            continue
        for item in value if isinstance(value, list) else [value]:
            pairs.append((key, str(item).lower() if isinstance(item, bool) else str(item)))
    return pairs


@router.get("/vurdering")
def queue_page(request: Request, session: SessionDep, current: Adviser, pos: int = 0) -> HTMLResponse:
    """Til vurdering: the review queue, its counter, and the first report with its decision form."""
    parsed = queue_query(request.query_params.multi_items())
    return render(request, "queue.html", queue_context(session, request, current, parsed, pos), current=current,
                  status=422 if parsed.errors else 200)


@router.get("/vurdering/panel")
def queue_panel(request: Request, session: SessionDep, current: Adviser, pos: int = 0) -> HTMLResponse:
    """The report at a queue position, for htmx (next and previous without a page load)."""
    parsed = queue_query(request.query_params.multi_items())
    return render(request, "partials/queue_panel.html", queue_context(session, request, current, parsed, pos),
                  current=current)


@router.get("/avvik/{report_id}")
def report_page(request: Request, report_id: int, session: SessionDep, current: Adviser) -> HTMLResponse:
    """A report: text with the explanation marked, classification, labels with provenance, history, decision."""
    context = report_context(session, request, current, report_id)
    return render(request, "report.html", {**context, "from_queue": False, "saved": request.query_params.get(
        "lagret") == "1"}, current=current)


@router.get("/avvik/{report_id}/lignende")
def similar_fragment(request: Request, report_id: int, session: SessionDep, current: Adviser) -> HTMLResponse:
    """Reports like this one (loaded after the report by htmx: comparing texts is the slowest part)."""
    departments = current.principal.departments
    result = stats_service.similar(session, report_id, ReportListQuery(), request.app.state.local_tz, departments, 5)
    audit.record(session, request, current.principal, "report.similar",
                 report_ids=[report_id, *(i.report.id for i in result.items)], detail="web")
    return render(request, "partials/similar.html", {"similar": result.items}, current=current)


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
                                       settings_of(request).audit_sample_share,
                                       if_match=[review_service.version_of(seen_review)])
    except PreconditionFailed:
        history = review_service.history(session, report_id, principal.departments)
        raise DecidedMeanwhile(history.reviews[0] if history.reviews else None) from None


@router.post("/avvik/{report_id}/vurdering")
def post_decision(request: Request, report_id: int, current: Adviser, session: SessionDep, form: FormDep) -> Response:
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
            context["announcement"] = f"{DECISION_WORDS[body.decision.value]}: lagret. {context['left']} igjen."
        else:
            context = queue_context(session, request, current, parsed, pos)
            context.update(form_errors=errors, meanwhile=meanwhile, report=context.get("report"))
            if context.get("report") is None or context["report"].id != report_id:
                context.update(report_context(session, request, current, report_id))
        template = "partials/queue_panel.html" if request.headers.get("HX-Request") else "queue.html"
        return render(request, template, context, current=current, status=status)
    if status == 200:
        return RedirectResponse(f"/avvik/{report_id}?lagret=1", status_code=303)
    context = report_context(session, request, current, report_id)
    context.update(form_errors=errors, meanwhile=meanwhile, from_queue=False)
    return render(request, "report.html", context, current=current, status=status)


def filter_values_from_qs(qs: str) -> list[tuple[str, str]]:
    """The pairs of a query string carried in a hidden field."""
    return parse_qsl(qs[:2000], keep_blank_values=False)


# ---- the report list and its exports --------------------------------------------------------------------------

LIST_QUERY_FIELDS = FILTER_FIELDS | {"sort", "order", "cursor", "q", "include_description"}


def list_page_response(request: Request, session: Any, current: web_session.Current,
                       items: Iterable[tuple[str, Any]]) -> HTMLResponse:
    """Avvik: the filters as a form, a page of reports, cursor links and the download buttons."""
    parsed = parse(ReportListQuery, filter_values(items, LIST_QUERY_FIELDS))
    errors = dict(parsed.errors)
    page = None
    if not errors:
        try:
            page = report_service.list_reports(session, parsed.query, request.app.state.local_tz,
                                               current.principal.departments, request.app.state.cursor_key)
        except InvalidInput as exc:
            errors.update(domain_field_errors(exc))
    if page is not None:
        audit.record(session, request, current.principal, "report.list", report_ids=[r.id for r in page.items],
                     query=parsed.query.model_dump(mode="json", exclude={"cursor"}))
    filters = request_filter_items(parsed.query)
    next_qs = None
    if page is not None and page.next_cursor:
        next_qs = urlencode([*filters, ("cursor", page.next_cursor)])
    return render(request, "list.html", {
        "page": page, "query": parsed.query, "errors": errors, "choices": taxonomy_choices(session),
        "labels": labels_of(session), "filter_qs": urlencode(filters), "next_qs": next_qs,
        "searched": bool(parsed.query.q), "field_words": FIELD_WORDS, "request_items": filters,
    }, current=current, status=422 if errors else 200)


@router.get("/avvik")
def list_page(request: Request, session: SessionDep, current: Adviser) -> HTMLResponse:
    """The list with its filters from the URL (bookmarkable); free-text search comes by POST."""
    items = [(k, v) for k, v in request.query_params.multi_items() if k != "q"]
    return list_page_response(request, session, current, items)


@router.post("/avvik")
def list_search(request: Request, session: SessionDep, current: Adviser, form: FormDep) -> HTMLResponse:
    """The list with a free-text search: `q` travels in the body, never in a URL (logs, history, proxies)."""
    return list_page_response(request, session, current, [(k, v) for k, v in form.multi_items()])


@router.post("/avvik/eksport")
def list_export(request: Request, session: SessionDep, current: Adviser, form: FormDep) -> Response:
    """Every report under the filter as CSV or XLSX, audited as the API's exports."""
    wanted = str(form.get("format", "csv"))
    if wanted not in ("csv", "xlsx"):
        raise InvalidInput("format", [FieldError(field="format", reason="csv eller xlsx")])
    parsed = parse(ReportListQuery, filter_values(form.multi_items(), LIST_QUERY_FIELDS))
    if parsed.errors:
        raise InvalidInput("filter", [FieldError(field=k, reason=v) for k, v in parsed.errors.items()])
    # People download from the pages: Norwegian headings.
    return report_service.start_export(session, request, current.principal, parsed.query, wanted, "nb")


# ---- statistics, start page, model ----------------------------------------------------------------------------

def default_period(today: date) -> tuple[date, date]:
    """The last twelve months, whole months."""
    months = today.year * 12 + today.month - 1 - 11
    return date(months // 12, months % 12 + 1, 1), today


def stats_filter(request: Request) -> Parsed:
    """The statistics filter from the URL, defaulting to the last twelve months."""
    values = filter_values(request.query_params.multi_items(), FILTER_FIELDS)
    if "reported_from" not in values and "reported_to" not in values:
        first, last = default_period(datetime.now(request.app.state.local_tz).date())
        values.update(reported_from=first.isoformat(), reported_to=last.isoformat())
    return parse(EstimateQuery, values)


def statistics(session: Any, request: Request, current: web_session.Current, f: Any) -> dict[str, Any]:
    """Every figure of the statistics page, from the API's statistics services (side by side when it can)."""
    local, departments = request.app.state.local_tz, current.principal.departments
    common = f.model_dump(exclude={"format"})
    by = [Dimension.PERIOD, Dimension.TARGET_GROUP]
    return side_by_side(request, session, {
        "counts": lambda s: stats_service.counts(s, CountsQuery(**common, by=by), local, departments,
                                                 protect_small=False, k=1),
        "trend": lambda s: stats_service.trend(s, TrendQuery(**common), local, departments),
        "matrix": lambda s: stats_service.matrix(s, MatrixQuery(**common), local, departments),
        "recurring": lambda s: stats_service.recurring(s, RecurringQuery(**common), local, departments),
        "estimate": lambda s: stats_service.estimate_count(s, f, local, departments),
    })


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


@router.get("/statistikk")
def stats_page(request: Request, session: SessionDep, current: Adviser) -> HTMLResponse:
    """Statistikk: counts by month and target group, trend, who fails with whom, recurring, the estimate."""
    parsed = stats_filter(request)
    errors = dict(parsed.errors)
    context: dict[str, Any] = {"query": parsed.query, "errors": errors, "choices": taxonomy_choices(session),
                               "labels": labels_of(session), "field_words": FIELD_WORDS,
                               "filter_qs": urlencode(request_filter_items(parsed.query))}
    if not errors:
        try:
            figures = statistics(session, request, current, parsed.query)
        except InvalidInput as exc:
            errors.update(domain_field_errors(exc))
        else:
            labels = context["labels"]
            trend_points = figures["trend"].points
            service_pairs = figures["matrix"].service_pairs
            names = sorted({p.a for p in service_pairs[:40]} | {p.b for p in service_pairs[:40]})[:12]
            cells, side = views.heatmap(names, {(p.a, p.b): p.count for p in service_pairs},
                                        labels["service"])
            audit.record(session, request, current.principal, "stats.recurring", detail="web",
                         report_ids=[i for g in figures["recurring"].groups for i in g.example_ids],
                         query=parsed.query.model_dump(mode="json", exclude={"format"}))
            context.update(figures, grid=counts_grid(figures["counts"], labels),
                           trend_chart=views.line([p.period for p in trend_points], [p.count for p in trend_points],
                                                  "Antall") if trend_points else None,
                           heat_names=names, heat_cells=cells, heat_side=side,
                           estimate_words=views.estimate_words(figures["estimate"]))
    return render(request, "stats.html", context, current=current, status=422 if errors else 200)


STATS_PARTS = {"antall": ("counts", stats_export.counts_table), "trend": ("trend", stats_export.trend_table),
               "samhandling": ("matrix", stats_export.matrix_table),
               "gjentakende": ("recurring", stats_export.recurring_table),
               "estimat": ("estimate", stats_export.estimate_table)}


@router.get("/statistikk/{part}.csv")
def stats_csv(request: Request, part: str, session: SessionDep, current: Adviser) -> Response:
    """The numbers of one part of the statistics page, exactly as shown, as CSV."""
    if part not in STATS_PARTS:
        raise NotFound("no such page")
    parsed = stats_filter(request)
    if parsed.errors:
        raise InvalidInput("filter", [FieldError(field=k, reason=v) for k, v in parsed.errors.items()])
    name, table = STATS_PARTS[part]
    figures = statistics(session, request, current, parsed.query)
    if name == "recurring":
        audit.record(session, request, current.principal, "stats.recurring", detail="web.csv",
                     report_ids=[i for g in figures["recurring"].groups for i in g.report_ids])
    columns, rows = table(figures[name])
    return csv_response(f"statistikk-{part}.csv", columns, rows)


@router.get("/")
def overview_page(request: Request, session: SessionDep, current: Adviser) -> HTMLResponse:
    """Oversikt: flags waiting, confirmed cases this month and year, the estimate in words, a trend."""
    local, departments = request.app.state.local_tz, current.principal.departments
    today = datetime.now(local).date()
    share = settings_of(request).audit_sample_share
    waiting = review_service.review_queue(session, ReviewQueueQuery(limit=QUEUE_WINDOW), local, departments, share,
                                          request.app.state.cursor_key)
    year = stats_service.estimate_count(session, EstimateQuery(reported_from=date(today.year, 1, 1),
                                                               reported_to=today), local, departments)
    month = stats_service.estimate_count(session, EstimateQuery(reported_from=today.replace(day=1),
                                                                reported_to=today), local, departments)
    first, _ = default_period(today)
    trend = stats_service.trend(session, TrendQuery(category=TARGET_CATEGORY, reported_from=first,
                                                    reported_to=today), local, departments)
    points = trend.points
    return render(request, "overview.html", {
        "waiting": len(waiting.items), "more": waiting.next_cursor is not None, "year": year, "month": month,
        "today": today, "estimate_words": views.estimate_words(year), "trend": trend,
        "trend_chart": views.line([p.period for p in points], [p.count for p in points], "Bekreftede saker")
        if points else None,
    }, current=current)


@router.get("/modell")
def model_page(request: Request, session: SessionDep, current: Admin) -> HTMLResponse:
    """Modell (admin): the active model, live precision per department, misses in the audit sample, candidates
    and the promotion gate."""
    active = registry_service.active_version(session)
    models = [registry_service.model_out(row, active) for row in registry_service.list_versions(session)]
    quality = registry_service.quality(session)

    def f1(model: Any) -> float | None:
        value = model.metrics.get("cv", {}).get(TARGET_CATEGORY, {}).get("f1")
        return float(value) if isinstance(value, int | float) else None

    active_model = next((m for m in models if m.active), None)
    return render(request, "model.html", {
        "models": models, "quality": quality, "active": active_model, "f1": f1,
        "active_f1": f1(active_model) if active_model else None, "labels": labels_of(session),
    }, current=current)


def timestamp(value: datetime | None, local: Any) -> str:
    """A time as Norwegians write it, in Oslo time."""
    return value.astimezone(local).strftime("%d.%m.%Y kl. %H:%M") if value else ""


TEMPLATES.env.globals.update(QueueOrder=QueueOrder, timedelta=timedelta)
