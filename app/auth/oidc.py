"""Entra ID (OIDC) access tokens: keys from the issuer's JWKS, claims checked, roles from `roles`."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from jwt import PyJWK

from app.errors import Unavailable

# Fixed in code, never read from the token: this is what makes `alg: none` and HS256-with-the-public-key
# attacks fail.
ALGORITHMS = ["RS256"]
# After a failed fetch, calls answer 503 at once for this long instead of each trying again: a key set
# that does not answer must not hold every signing-in request for a fetch timeout of its own.
FAILED_FETCH_MEMORY_S = 10
MAX_JWKS_BYTES = 1024 * 1024  # Entra ID's key set is a few kilobytes


class InvalidToken(Exception):
    """The token is not one we accept; the message says why (safe to show the caller)."""


@dataclass(frozen=True)
class TokenClaims:
    """What we use from a verified token."""

    object_id: str
    tenant_id: str
    roles: tuple[str, ...]


class JwksCache:
    """The issuer's signing keys, cached; an unknown key id refetches at most once per interval.

    One fetch at a time: concurrent callers wait for it (at most `timeout` seconds, a whole fetch's
    deadline) and use its result, and a failure is remembered for FAILED_FETCH_MEMORY_S.
    """

    def __init__(self, url: str, cache_seconds: int, min_refetch_seconds: int, timeout: float = 5.0) -> None:
        self.url = url
        self.cache_seconds = cache_seconds
        self.min_refetch_seconds = min_refetch_seconds
        self.timeout = timeout
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at = float("-inf")
        self._failed_at = float("-inf")
        self._lock = threading.Lock()
        self.fetches = 0

    def key(self, kid: str) -> PyJWK:
        """The signing key with this id; 503 when no key set can be had, InvalidToken for an unknown id."""
        with self._lock:
            now = time.monotonic()
            if now - self._fetched_at > self.cache_seconds:
                self._fetch(now, required=not self._keys)
            elif kid not in self._keys and now - self._fetched_at >= self.min_refetch_seconds:
                self._fetch(now, required=False)
            if kid not in self._keys:
                raise InvalidToken("unknown signing key")
            return self._keys[kid]

    def _fetch(self, now: float, required: bool) -> None:
        if time.monotonic() - self._failed_at < FAILED_FETCH_MEMORY_S:
            # The fetch this caller waited for (or one just before) failed: do not queue another.
            if required:
                raise _keys_unavailable()
            return
        try:
            self.fetches += 1
            keys = {}
            for jwk in json.loads(self._download()).get("keys", []):
                if jwk.get("kty") == "RSA" and jwk.get("kid") and jwk.get("use", "sig") == "sig":
                    keys[jwk["kid"]] = PyJWK(jwk, algorithm="RS256")
        except (httpx.HTTPError, ValueError, AttributeError, jwt.PyJWTError) as exc:
            self._failed_at = time.monotonic()
            if required:
                raise _keys_unavailable() from exc
            self._fetched_at = now  # keep the old keys, and do not hammer the issuer
            return
        self._keys = keys
        self._fetched_at = now

    def _download(self) -> bytes:
        """The key set's bytes, within `timeout` seconds in all (httpx's timeouts are per read, so a server
        that trickles bytes would otherwise hold the fetch for ever) and MAX_JWKS_BYTES."""
        deadline = time.monotonic() + self.timeout
        body = bytearray()
        with httpx.Client(timeout=self.timeout) as client, client.stream("GET", self.url) as response:
            response.raise_for_status()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise ValueError("key set too large")
                if time.monotonic() > deadline:
                    raise httpx.TimeoutException("key set fetch took too long")
        return bytes(body)


def _keys_unavailable() -> Unavailable:
    return Unavailable("the identity provider's signing keys cannot be fetched",
                       headers={"Retry-After": str(FAILED_FETCH_MEMORY_S)})


def verify_token(token: str, jwks: JwksCache, issuer: str, audience: str, tenant_id: str) -> TokenClaims:
    """Check signature, issuer, audience, tenant, expiry and not-before; jku/x5u headers are ignored."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise InvalidToken("malformed token") from exc
    if header.get("alg") not in ALGORITHMS:
        raise InvalidToken("unexpected signing algorithm")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise InvalidToken("token has no key id")
    key = jwks.key(kid)
    try:
        claims: dict[str, Any] = jwt.decode(
            token, key=key.key, algorithms=ALGORITHMS, audience=audience, issuer=issuer,
            options={"require": ["exp", "nbf", "iss", "aud", "tid", "oid"]}, leeway=30,
        )
    except jwt.ExpiredSignatureError as exc:
        raise InvalidToken("token expired") from exc
    except jwt.ImmatureSignatureError as exc:
        raise InvalidToken("token not yet valid") from exc
    except jwt.InvalidAudienceError as exc:
        raise InvalidToken("token is for another audience") from exc
    except jwt.InvalidIssuerError as exc:
        raise InvalidToken("token is from another issuer") from exc
    except jwt.PyJWTError as exc:
        raise InvalidToken("invalid token") from exc
    if claims.get("tid") != tenant_id:
        raise InvalidToken("token is from another tenant")
    roles = claims.get("roles", [])
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise InvalidToken("malformed roles claim")
    return TokenClaims(object_id=str(claims["oid"]), tenant_id=str(claims["tid"]), roles=tuple(roles))
