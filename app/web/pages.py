"""What every page shares: templates and rendering, the page rule (session, role, CSRF, rate limit), errors as
pages, and the filters as forms and URLs. No SQL here and no calls to the API over HTTP."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.auth.dependencies import Authorize
from app.auth.principal import Role
from app.db import SessionDep
from app.dependencies import get_settings
from app.errors import DomainError, InvalidInput, NotFound, TooManyRequests
from app.review.schemas import QueueOrder
from app.settings import Settings
from app.taxonomy.models import CodeKind
from app.taxonomy.service import load_taxonomy
from app.web import session as web_session
from app.web import views
from app.web.security import NOT_PAGES

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
TEMPLATES.env.trim_blocks = TEMPLATES.env.lstrip_blocks = True  # no template indentation in the page weight
# The queue page reads this many waiting reports (its counter says "over 100" beyond): every decision answers
# with the next report and the counter, so this read is in the decision's round trip.
QUEUE_WINDOW = 100
SHOWN = 20  # how many of the window's reports the panel lists, with their titles, under "De neste i køen"
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

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
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




def page_router() -> APIRouter:
    """A router of pages: its errors are pages (PageRoute), and it is not in the API's OpenAPI document."""
    return APIRouter(include_in_schema=False, route_class=PageRoute)


def settings_of(request: Request) -> Settings:
    """The app's settings."""
    return get_settings(request)


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

    def __call__(  # type: ignore[override]  # a page also asks for the session and the form token
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
        answer = answer_json(request, exc)
        response: Response = await answer if inspect.isawaitable(answer) else answer
        return response

    app.add_exception_handler(StarletteHTTPException, not_found)


def safe_next(value: str | None) -> str:
    """Only a path on this site may be the page after sign-in (no open redirect)."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


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


def request_filter_items(query: BaseModel) -> list[tuple[str, str]]:
    """A validated query back as URL pairs (defaults left out), to carry it into links and hidden fields."""
    pairs: list[tuple[str, str]] = []
    for key, value in query.model_dump(mode="json", exclude_defaults=True).items():
        if key in ("limit", "cursor", "format", "q"):
            continue
        for item in value if isinstance(value, list) else [value]:
            pairs.append((key, str(item).lower() if isinstance(item, bool) else str(item)))
    return pairs


def timestamp(value: datetime | None, local: Any) -> str:
    """A time as Norwegians write it, in Oslo time."""
    return value.astimezone(local).strftime("%d.%m.%Y kl. %H:%M") if value else ""


TEMPLATES.env.globals.update(QueueOrder=QueueOrder, timedelta=timedelta)
