"""Server-side sessions of the web pages, their CSRF tokens, and the local sign-in methods (an API key on a
form, a one-time link); Entra ID sign-in is in app/web/entra.py and ends in `start_session` too."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from app.auth import keys
from app.auth.models import ApiKey
from app.auth.principal import Principal, Role
from app.db import utcnow
from app.settings import Settings
from app.web.models import WebSession, WebSignin

CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
LINK_MINUTES = 10
PAGE_ROLES = frozenset({Role.ADVISER, Role.ADMIN})  # dashboard and integration callers get no pages


def cookie_name(settings: Settings) -> str:
    """`__Host-` binds the cookie to this exact origin over HTTPS; browsers refuse it without Secure."""
    return "__Host-avvik" if settings.web_cookie_secure else "avvik"


def digest(token: str) -> str:
    """The stored form of a cookie, state or link token (256 random bits, so a plain hash is enough)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def key_signin_enabled(settings: Settings) -> bool:
    """API-key and link sign-in: on for local use, off when Entra ID is configured unless asked for."""
    if settings.web_key_signin is not None:
        return settings.web_key_signin
    return not entra_enabled(settings)


def entra_enabled(settings: Settings) -> bool:
    """Entra ID sign-in needs the client id and everything the API needs to verify its tokens."""
    return bool(settings.oidc_client_id and settings.oidc_issuer and settings.oidc_tenant_id
                and settings.oidc_jwks_url)


@dataclass(frozen=True)
class Current:
    """The session of a request and who it belongs to."""

    row: WebSession
    principal: Principal

    @property
    def csrf_token(self) -> str:
        """The token every state-changing request of this session must carry."""
        return self.row.csrf_token


def may_see_pages(principal: Principal) -> bool:
    """Pages show free text: only advisers and admins get them."""
    return bool(principal.roles & PAGE_ROLES)


def start_session(db: Session, principal: Principal, settings: Settings) -> str:
    """A new session for a signed-in person; returns the cookie value (shown once, stored hashed)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    longest = now + timedelta(hours=settings.web_session_max_hours)
    db.add(WebSession(
        id=digest(token), kind=principal.kind, subject=principal.subject, tenant=principal.tenant,
        roles=sorted(r.value for r in principal.roles),
        departments=sorted(principal.departments) if principal.departments is not None else None,
        csrf_token=secrets.token_urlsafe(32), created_at=now, max_expires_at=longest,
        expires_at=min(now + timedelta(minutes=settings.web_session_idle_minutes), longest),
    ))
    db.flush()
    return token


def load_session(db: Session, request: Request, settings: Settings) -> Current | None:
    """The live session named by the request's cookie, or None (missing, ended or expired)."""
    token = request.cookies.get(cookie_name(settings))
    if not token:
        return None
    row = db.get(WebSession, digest(token))
    if row is None or row.ended_at is not None or row.expires_at <= utcnow():
        return None
    principal = Principal(kind=row.kind, subject=row.subject, tenant=row.tenant,
                          roles=frozenset(Role(r) for r in row.roles),
                          departments=frozenset(row.departments) if row.departments is not None else None)
    return Current(row=row, principal=principal)


def extend(db: Session, current: Current, settings: Settings) -> None:
    """Use (or the extend button) moves the end of the session forward, never past its longest life."""
    now = utcnow()
    current.row.expires_at = min(now + timedelta(minutes=settings.web_session_idle_minutes),
                                 current.row.max_expires_at)
    db.flush()


def end_session(db: Session, current: Current) -> None:
    """Sign-out: the session stops working at once, on every tab and every server process."""
    current.row.ended_at = utcnow()
    db.flush()


def minutes_left(current: Current, now: datetime | None = None) -> int:
    """Whole minutes until the session ends (rounded down)."""
    return max(0, int((current.row.expires_at - (now or utcnow())).total_seconds() // 60))


def csrf_ok(request: Request, current: Current, form_token: str | None) -> bool:
    """Whether a state-changing request carries this session's CSRF token (htmx header or form field)."""
    sent = request.headers.get(CSRF_HEADER) or form_token or ""
    return hmac.compare_digest(sent.encode(), current.csrf_token.encode())


def set_cookie(response: Response, token: str, settings: Settings) -> None:
    """The session cookie: HttpOnly, SameSite=Lax, Secure unless turned off for plain local HTTP."""
    response.set_cookie(cookie_name(settings), token, httponly=True, secure=settings.web_cookie_secure,
                        samesite="lax", path="/", max_age=settings.web_session_max_hours * 3600)


def clear_cookie(response: Response, settings: Settings) -> None:
    """Remove the session cookie from the browser."""
    response.delete_cookie(cookie_name(settings), path="/", secure=settings.web_cookie_secure, httponly=True,
                           samesite="lax")


def signin_with_key(db: Session, key: str) -> Principal | None:
    """The principal of an API key typed on the sign-in form, or None for an unknown or revoked key."""
    return keys.authenticate_key(db, key.strip()) if key.strip() else None


def create_link(db: Session, key_name: str) -> str:
    """A one-time sign-in link token for an API key's role and departments, valid for LINK_MINUTES."""
    row = db.scalar(select(ApiKey).where(ApiKey.name == key_name))
    if row is None or row.revoked_at is not None:
        raise LookupError(f"no active API key named '{key_name}'")
    token = secrets.token_urlsafe(32)
    now = utcnow()
    db.add(WebSignin(id=digest(token), purpose="link", key_name=key_name, created_at=now,
                     expires_at=now + timedelta(minutes=LINK_MINUTES)))
    db.flush()
    return token


def redeem_link(db: Session, token: str) -> Principal | None:
    """The principal a sign-in link stands for, once; None for an unknown, used or expired link, or a key
    revoked since the link was made."""
    row = take_signin(db, token, "link")
    if row is None or row.key_name is None:
        return None
    key = db.scalar(select(ApiKey).where(ApiKey.name == row.key_name))
    if key is None or key.revoked_at is not None:
        return None
    return Principal(kind="api_key", subject=key.name, tenant=None, roles=frozenset({Role(key.role)}),
                     departments=frozenset(key.departments) if key.departments else None)


def take_signin(db: Session, token: str, purpose: str) -> WebSignin | None:
    """Use up a one-time sign-in step; None when unknown, of another purpose, used or expired. The row is
    locked so that two requests racing with one token cannot both use it (PostgreSQL)."""
    row = db.scalar(select(WebSignin).where(WebSignin.id == digest(token)).with_for_update())
    if row is None or row.purpose != purpose or row.used_at is not None or row.expires_at <= utcnow():
        return None
    row.used_at = utcnow()
    db.flush()
    return row
