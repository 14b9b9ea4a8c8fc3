"""Creating, revoking and checking API keys."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.models import ApiKey
from app.auth.principal import Principal, Role
from app.db import utcnow
from app.errors import Conflict, FieldError, InvalidInput, NotFound, echo
from app.taxonomy import service as taxonomy_service
from app.taxonomy.models import CodeKind

KEY_PREFIX = "avk_"


def hash_key(key: str) -> str:
    """The stored form of a key. Keys carry 256 random bits, so a plain SHA-256 cannot be brute-forced."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_key(
    session: Session, name: str, role: Role, departments: list[str] | None, key: str | None = None
) -> tuple[ApiKey, str]:
    """Create a key and return it with its plaintext, which is shown once and never stored."""
    if not name.strip():
        raise InvalidInput("a key needs a name", [FieldError(field="name", reason="empty")])
    if session.scalar(select(ApiKey.id).where(ApiKey.name == name)) is not None:
        raise Conflict(f"a key named '{echo(name)}' exists", [FieldError(field="name", reason="already exists")])
    if departments:
        # A key limited to a code no report carries would see nothing, silently.
        known = {code for code, row in taxonomy_service.load_taxonomy(session).codes[CodeKind.DEPARTMENT].items()
                 if row.retired_at is None}
        unknown = [echo(code) for code in sorted(set(departments) - known)]
        if unknown:
            raise InvalidInput(f"unknown department {', '.join(unknown)}; known: {', '.join(sorted(known))}",
                               [FieldError(field="departments", reason=f"unknown: {', '.join(unknown)}")])
    plaintext = key or KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(name=name, role=role.value, departments=sorted(departments) if departments else None,
                 key_hash=hash_key(plaintext), created_at=utcnow())
    session.add(row)
    session.flush()
    return row, plaintext


def revoke_key(session: Session, name: str) -> ApiKey:
    """Revoke a key by name; it stops working at once and stays listed as revoked."""
    row = session.scalar(select(ApiKey).where(ApiKey.name == name))
    if row is None:
        raise NotFound(f"no key named '{echo(name)}'")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.flush()
    return row


def list_keys(session: Session) -> list[ApiKey]:
    """Every key, newest first (hashes only)."""
    return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at.desc(), ApiKey.id.desc())))


def authenticate_key(session: Session, key: str) -> Principal | None:
    """The caller a key belongs to, or None for an unknown or revoked key."""
    digest = hash_key(key)
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == digest))
    if row is None or row.revoked_at is not None or not hmac.compare_digest(row.key_hash, digest):
        return None
    return Principal(kind="api_key", subject=row.name, tenant=None, roles=frozenset({Role(row.role)}),
                     departments=frozenset(row.departments) if row.departments else None)


def ensure_bootstrap_key(session: Session, configured: str | None) -> str | None:
    """On a database with no keys at all, create an admin key; return its plaintext when it was generated.

    A configured AVVIK_BOOTSTRAP_API_KEY is used as given (and not echoed). Once any key exists this
    does nothing, so a production database never gets a second, forgotten admin key.
    """
    if session.scalar(select(ApiKey.id).limit(1)) is not None:
        return None
    _, plaintext = create_key(session, "bootstrap-admin", Role.ADMIN, None, key=configured)
    return None if configured else plaintext
