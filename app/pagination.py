"""Opaque cursors for keyset pagination, which stays correct while new rows arrive.

A cursor is the position after the last row of a page, signed with HMAC-SHA-256 under the server's cursor
key (`cursor_key`), so a client cannot make one up; and every field of it is checked again when it comes
back (the ordering, an id a row can have, a time or a finite number in range), so that even a cursor made
with a leaked key is a 422 naming `cursor`, never a database error.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar, overload

from app.errors import FieldError, InvalidInput
from app.fields import EARLIEST, LATEST, MAX_ID

MAX_LIMIT = 500
DEFAULT_LIMIT = 50
_SIGNATURE_BYTES = 16  # 128 bits of HMAC-SHA-256: more than enough against guessing, and a short token
_MAX_SCORE = 1e9  # queue keys are scores and distances in [0, 1]; anything far beyond is not ours
V = TypeVar("V", datetime, float)  # what a list is sorted by: a time, or a score


def cursor_key(secret: str | None, database_url: str) -> bytes:
    """The key cursors are signed with: from the configured secret, else derived from the database URL.

    Every replica of one installation shares the database URL, so pages begun on one replica continue on
    another without any shared state; on PostgreSQL the URL holds the database password. Set a secret of
    its own (the same in every replica) where the URL is not secret, e.g. SQLite.
    """
    material = f"secret:{secret}" if secret else f"database-url:{database_url}"
    return hashlib.sha256(b"avvik-cursor\x00" + material.encode()).digest()


def _invalid(reason: str) -> InvalidInput:
    return InvalidInput(f"cursor: {reason}", [FieldError(field="cursor", reason=reason)])


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a position")


@dataclass(frozen=True)
class Cursor(Generic[V]):
    """The position after the last row of a page, and the ordering it belongs to."""

    ordering: str
    value: V
    last_id: int

    def encode(self, key: bytes) -> str:
        """An opaque, URL-safe, signed token."""
        value = self.value.isoformat() if isinstance(self.value, datetime) else float(self.value)
        raw = json.dumps({"o": self.ordering, "v": value, "i": self.last_id}, separators=(",", ":"))
        body = _b64encode(raw.encode())
        return f"{body}.{_sign(key, body)}"

    @classmethod
    def decode(cls, token: str, ordering: str, key: bytes, kind: type[V]) -> Cursor[V]:
        """Read a token; 422 naming the cursor when it is not one this API signed, is from another ordering,
        or holds a value that cannot be a position of `kind` (a time for dates, a finite number for scores)."""
        body, _, signature = token.partition(".")
        if not signature or not hmac.compare_digest(signature.encode("utf-8", "replace"), _sign(key, body).encode()):
            raise _invalid("not a cursor from this API (use next_cursor of the previous page unchanged)")
        try:
            raw = json.loads(_b64decode(body), parse_constant=_no_constants)
        except (ValueError, binascii.Error, RecursionError) as exc:
            raise _invalid("not a cursor from this API") from exc
        if not isinstance(raw, dict) or set(raw) != {"o", "v", "i"}:
            raise _invalid("not a cursor from this API")
        if raw["o"] != ordering:
            raise _invalid("belongs to another sort order; sort and order must match the first page")
        last_id = raw["i"]
        if not isinstance(last_id, int) or isinstance(last_id, bool) or not 1 <= last_id <= MAX_ID:
            raise _invalid("not a position of this list")
        return cls(ordering=ordering, value=_value(raw["v"], kind), last_id=last_id)


def _sign(key: bytes, body: str) -> str:
    digest = hmac.new(key, body.encode("utf-8", "replace"), hashlib.sha256).digest()
    return _b64encode(digest[:_SIGNATURE_BYTES])


@overload
def _value(value: object, kind: type[datetime]) -> datetime: ...
@overload
def _value(value: object, kind: type[float]) -> float: ...
def _value(value: object, kind: type[datetime] | type[float]) -> datetime | float:
    """The position's sort value, checked as strictly as a request's own times and numbers."""
    if kind is datetime:
        if isinstance(value, str):
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                moment = None
            if moment is not None and moment.tzinfo is not None and EARLIEST <= moment.date() <= LATEST:
                return moment
        raise _invalid("not a position of this list")
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) \
            and abs(value) <= _MAX_SCORE:
        return float(value)
    raise _invalid("not a position of this list")
