"""Opaque cursors for keyset pagination, which stays correct while new rows arrive."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime

from app.errors import FieldError, InvalidInput

MAX_LIMIT = 500
DEFAULT_LIMIT = 50


@dataclass(frozen=True)
class Cursor:
    """The position after the last row of a page, and the ordering it belongs to."""

    ordering: str
    value: datetime | float
    last_id: int

    def encode(self) -> str:
        """An opaque, URL-safe token."""
        value = self.value.isoformat() if isinstance(self.value, datetime) else float(self.value)
        raw = json.dumps({"o": self.ordering, "v": value, "i": self.last_id}, separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str, ordering: str) -> Cursor:
        """Read a token; 422 naming the cursor when it is malformed or from another ordering."""
        try:
            raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            value = float(raw["v"]) if isinstance(raw["v"], int | float) else datetime.fromisoformat(raw["v"])
            cursor = cls(ordering=str(raw["o"]), value=value, last_id=int(raw["i"]))
        except (ValueError, KeyError, TypeError, binascii.Error, json.JSONDecodeError) as exc:
            raise InvalidInput("invalid cursor", [FieldError(field="cursor", reason="not a cursor from this API")]) \
                from exc
        naive = isinstance(cursor.value, datetime) and cursor.value.tzinfo is None
        if cursor.ordering != ordering or naive:
            raise InvalidInput("cursor belongs to another sort order",
                               [FieldError(field="cursor", reason="sort and order must match the first page")])
        return cursor
