"""Tables of the web pages: server-side sessions and one-time sign-in steps."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime


class WebSession(Base):
    """A signed-in person's session; the cookie holds a random token whose SHA-256 is the id, so a copy of
    the table cannot be replayed as cookies. Ending a session (sign-out, revocation) sets ended_at."""

    __tablename__ = "web_session"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # "user" (Entra ID) or "api_key" (local sign-in)
    subject: Mapped[str] = mapped_column(String(200))
    tenant: Mapped[str | None] = mapped_column(String(100))
    roles: Mapped[list[str]] = mapped_column(JSON)
    departments: Mapped[list[str] | None] = mapped_column(JSON)  # None: every department
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)  # slides with use, up to max_expires_at
    max_expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebSignin(Base):
    """A sign-in step that may be used once: an Entra ID authorisation request (state, PKCE verifier, nonce)
    or a sign-in link printed by `avvik web signin-link` (for an API key's role and departments)."""

    __tablename__ = "web_signin"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the state or link token
    purpose: Mapped[str] = mapped_column(String(20))  # "entra" or "link"
    code_verifier: Mapped[str | None] = mapped_column(String(200))
    nonce: Mapped[str | None] = mapped_column(String(100))
    key_name: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
