"""Sign-in (Entra ID, an API key, a one-time link), sign-out and the session's status."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.audit import service as audit
from app.auth.principal import Principal
from app.db import SessionDep
from app.web import entra, pages
from app.web import session as web_session

router = pages.page_router()


@router.get("/logg-inn")
def signin_page(request: Request, neste: str | None = None) -> HTMLResponse:
    """The sign-in page: Entra ID, and (for local use) an API key."""
    return signin_form(request, neste, None, 200)


def signin_form(request: Request, neste: str | None, error: str | None, status: int) -> HTMLResponse:
    """The sign-in form with a fresh double-submit token."""
    settings = pages.settings_of(request)
    token = secrets.token_urlsafe(24)
    response = pages.render(request, "signin.html", {
        "neste": pages.safe_next(neste), "error": error, "signin_token": token,
        "key_signin": web_session.key_signin_enabled(settings), "entra": web_session.entra_enabled(settings),
    }, current=None, status=status)
    response.set_cookie(pages.SIGNIN_COOKIE, token, httponly=True, secure=settings.web_cookie_secure, samesite="strict",
                        path="/logg-inn", max_age=1800)
    return response


@router.post("/logg-inn")
def signin_with_key(request: Request, session: SessionDep, api_key: Annotated[str, Form(max_length=200)] = "",
                    signin_token: Annotated[str, Form(max_length=100)] = "",
                    neste: Annotated[str, Form(max_length=500)] = "/") -> Response:
    """Sign in with an adviser's or admin's API key (local use and tests)."""
    settings = pages.settings_of(request)
    if not web_session.key_signin_enabled(settings):
        return signin_form(request, neste, "Innlogging med API-nøkkel er slått av her. Logg inn med Entra ID.", 403)
    cookie = request.cookies.get(pages.SIGNIN_COOKIE, "")
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
    settings = pages.settings_of(request)
    if not web_session.may_see_pages(principal):
        return signin_form(request, neste, "Rollen din gir ingen sider i denne tjenesten (bare API-tilgang).", 403)
    token = web_session.start_session(session, principal, settings)
    audit.record(session, request, principal, "web.signin")
    response = RedirectResponse(pages.safe_next(neste), status_code=303)
    web_session.set_cookie(response, token, settings)
    response.delete_cookie(pages.SIGNIN_COOKIE, path="/logg-inn")
    return response


@router.get("/logg-inn/lenke/{token}")
def signin_link_page(request: Request, token: str) -> HTMLResponse:
    """A one-time sign-in link asks for a click first, so that link scanners in e-mail do not use it up."""
    return pages.render(request, "signin_link.html", {"token": token}, current=None)


@router.post("/logg-inn/lenke/{token}")
def signin_with_link(request: Request, token: str, session: SessionDep) -> Response:
    """Redeem a one-time link from `avvik web signin-link`."""
    if not web_session.key_signin_enabled(pages.settings_of(request)):
        return signin_form(request, "/", "Innlogging med lenke er slått av her. Logg inn med Entra ID.", 403)
    principal = web_session.redeem_link(session, token)
    if principal is None:
        return signin_form(request, "/", "Lenken er ukjent, utløpt eller allerede brukt. Lag en ny.", 401)
    return begin_session(request, session, principal, "/")


def redirect_uri(request: Request) -> str:
    """Where Entra ID sends the person back (must match the app registration)."""
    return pages.settings_of(request).oidc_redirect_uri or str(request.url_for("entra_callback"))


def provider(request: Request) -> entra.ProviderMetadata:
    """The identity provider's discovery document (cached per process)."""
    state = request.app.state
    if getattr(state, "web_provider", None) is None:
        state.web_provider = entra.ProviderMetadata(entra.metadata_url(pages.settings_of(request)))
    found: entra.ProviderMetadata = state.web_provider
    return found


@router.get("/logg-inn/entra")
def entra_signin(request: Request, session: SessionDep) -> Response:
    """Send the browser to Entra ID with a one-time state, a nonce and a PKCE challenge."""
    if not web_session.entra_enabled(pages.settings_of(request)):
        return signin_form(request, "/", "Entra ID er ikke satt opp her.", 404)
    url = entra.begin(session, pages.settings_of(request), provider(request), redirect_uri(request))
    return RedirectResponse(url, status_code=303)


@router.get("/logg-inn/entra/svar", name="entra_callback")
def entra_callback(request: Request, session: SessionDep, code: str | None = None, state: str | None = None,
                   error: str | None = None) -> Response:
    """Entra ID's answer: redeem the code, verify the ID token, start a session."""
    if not web_session.entra_enabled(pages.settings_of(request)) or request.app.state.jwks is None:
        return signin_form(request, "/", "Entra ID er ikke satt opp her.", 404)
    if error or not code or not state:
        return signin_form(request, "/", "Innloggingen ble avbrutt hos identitetstjenesten.", 400)
    try:
        principal = entra.finish(session, pages.settings_of(request), provider(request), request.app.state.jwks, code,
                                 state, redirect_uri(request))
    except entra.SigninFailed as exc:
        return signin_form(request, "/", str(exc), 401)
    return begin_session(request, session, principal, "/")


@router.post("/logg-ut")
def signout(request: Request, session: SessionDep, current: pages.Adviser) -> Response:
    """End the session at once (in the table, so every tab and process sees it) and drop the cookie."""
    web_session.end_session(session, current)
    audit.record(session, request, current.principal, "web.signout")
    response = RedirectResponse("/logg-inn?utlogget=1", status_code=303)
    web_session.clear_cookie(response, pages.settings_of(request))
    return response


@router.get("/okt/status")
def session_status(request: Request, current: pages.AdviserStatus) -> HTMLResponse:
    """Polled by the page (without extending the session): a warning with an extend button near the end."""
    left = web_session.minutes_left(current)
    return pages.render(request, "partials/session_status.html",
                  {"minutes_left": left, "ends_at": current.row.expires_at, "expired": False}, current=current)


@router.post("/okt/forleng")
def session_extend(request: Request, current: pages.Adviser) -> HTMLResponse:
    """Extend the session (the dependency has already moved its end forward)."""
    return pages.render(request, "partials/session_status.html", {"minutes_left": web_session.minutes_left(current),
                                                            "ends_at": current.row.expires_at, "expired": False,
                                                            "extended": True}, current=current)
