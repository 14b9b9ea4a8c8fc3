"""Entra ID sign-in for the pages: OpenID Connect authorisation code flow with PKCE (RFC 7636).

Authlib makes the PKCE challenge, the random values and the authorisation URL; the ID token is verified by
the same code that verifies API tokens (app/auth/oidc.py: signature from the JWKS, issuer, audience, tenant,
expiry), and its `roles` claim maps to roles and departments exactly as for API tokens.
"""

from __future__ import annotations

import secrets
import threading
import time
from datetime import timedelta
from typing import Any

import httpx
import jwt
from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from sqlalchemy.orm import Session

from app.auth.dependencies import roles_from_claims
from app.auth.oidc import InvalidToken, JwksCache, verify_token
from app.auth.principal import Principal
from app.db import utcnow
from app.errors import Unavailable
from app.settings import Settings
from app.web.models import WebSignin
from app.web.session import digest, take_signin

SIGNIN_MINUTES = 10  # how long a person may take at the identity provider
METADATA_SECONDS = 3600


class SigninFailed(Exception):
    """The sign-in cannot be completed; the message is safe to show (no token content)."""


class ProviderMetadata:
    """The identity provider's discovery document, cached for an hour."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._document: dict[str, Any] | None = None
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()

    def get(self) -> dict[str, Any]:
        """The document; 503 when it cannot be had."""
        with self._lock:
            if self._document is None or time.monotonic() - self._fetched_at > METADATA_SECONDS:
                try:
                    response = httpx.get(self.url, timeout=5.0)
                    response.raise_for_status()
                    document = response.json()
                    if not (isinstance(document["authorization_endpoint"], str)
                            and isinstance(document["token_endpoint"], str)):
                        raise TypeError("endpoints missing")
                except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                    raise Unavailable("the identity provider cannot be reached; try again shortly",
                                      headers={"Retry-After": "30"}) from exc
                self._document, self._fetched_at = document, time.monotonic()
            return self._document


def metadata_url(settings: Settings) -> str:
    """Where the discovery document is (Entra: <issuer>/.well-known/openid-configuration)."""
    return settings.oidc_metadata_url or f"{(settings.oidc_issuer or '').rstrip('/')}/.well-known/openid-configuration"


def begin(db: Session, settings: Settings, provider: ProviderMetadata, redirect_uri: str) -> str:
    """Store a one-time state with its PKCE verifier and nonce; the URL to send the browser to."""
    state, verifier, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(48), secrets.token_urlsafe(24)
    now = utcnow()
    db.add(WebSignin(id=digest(state), purpose="entra", code_verifier=verifier, nonce=nonce, created_at=now,
                     expires_at=now + timedelta(minutes=SIGNIN_MINUTES)))
    db.flush()
    url: str = add_params_to_uri(provider.get()["authorization_endpoint"], [
        ("response_type", "code"), ("client_id", settings.oidc_client_id or ""), ("redirect_uri", redirect_uri),
        ("scope", "openid profile"), ("state", state), ("nonce", nonce),
        ("code_challenge", create_s256_code_challenge(verifier)), ("code_challenge_method", "S256"),
        ("response_mode", "query"),
    ])
    return url


def finish(db: Session, settings: Settings, provider: ProviderMetadata, jwks: JwksCache, code: str, state: str,
           redirect_uri: str) -> Principal:
    """Redeem the code (with the PKCE verifier) for an ID token, verify it, and map its roles."""
    signin = take_signin(db, state, "entra")
    if signin is None:
        raise SigninFailed("innloggingen er utløpt eller allerede brukt; prøv igjen")
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "client_id": settings.oidc_client_id, "code_verifier": signin.code_verifier}
    if settings.oidc_client_secret:
        form["client_secret"] = settings.oidc_client_secret
    try:
        response = httpx.post(provider.get()["token_endpoint"], data=form, timeout=10.0)
        response.raise_for_status()
        id_token = response.json()["id_token"]
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        raise SigninFailed("identitetstjenesten godtok ikke innloggingen; prøv igjen") from exc
    try:
        claims = verify_token(id_token, jwks, settings.oidc_issuer or "", settings.oidc_client_id or "",
                              settings.oidc_tenant_id or "")
    except InvalidToken as exc:
        raise SigninFailed("ID-tokenet fra identitetstjenesten ble ikke godtatt") from exc
    # The signature is checked above; this reads the nonce, which verify_token does not know about.
    nonce = jwt.decode(id_token, options={"verify_signature": False}).get("nonce")
    if not isinstance(nonce, str) or not secrets.compare_digest(nonce, signin.nonce or ""):
        raise SigninFailed("ID-tokenet hører ikke til denne innloggingen")
    roles, departments = roles_from_claims(claims.roles, settings)
    return Principal(kind="user", subject=claims.object_id, tenant=claims.tenant_id, roles=roles,
                     departments=departments)
