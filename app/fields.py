"""Field types the API shares: ISO 8601 dates and times in a sane range, ids a row can have, taxonomy codes and
statuses, text without NUL."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, TypeVar

from fastapi import Path
from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, StringConstraints, field_validator

# Ids are INTEGER columns (32-bit on PostgreSQL): a larger number cannot name a stored row, and sent to
# the database it is an error there (an out-of-range parameter), not a miss.
MAX_ID = 2**31 - 1

_D = TypeVar("_D", bound=date)

_NUMBER = re.compile(r"\s*[+-]?\d+(\.\d*)?\s*")


def _not_a_number(value: object) -> object:
    # Pydantic's lax mode reads a number as a Unix time, so 0 or 20260301 would silently become a day
    # in 1970; the API promises ISO 8601 and refuses anything else, naming the field.
    if isinstance(value, bool | int | float) or (isinstance(value, str) and _NUMBER.fullmatch(value)):
        raise ValueError("must be an ISO 8601 date or date-time, not a number")
    return value


# No report is older or newer than this; the margin keeps every date step the service takes (the next
# day, a year back, a time zone) inside what Python and the databases can represent.
EARLIEST, LATEST = date(1900, 1, 1), date(2199, 12, 31)


def _in_range(value: _D) -> _D:
    day = value.date() if isinstance(value, datetime) else value
    if not EARLIEST <= day <= LATEST:
        raise ValueError(f"must be between {EARLIEST} and {LATEST}")
    return value


IsoDate = Annotated[date, BeforeValidator(_not_a_number), AfterValidator(_in_range)]
IsoDateTime = Annotated[datetime, BeforeValidator(_not_a_number), AfterValidator(_in_range)]
# A taxonomy code as sent; never empty, so `?service=` in a filter is refused by name rather than read as a
# filter that matches nothing.
Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80)]
# A case status as the quality system names it (registrert, under_behandling, …), kept in lower case; a
# filter normalises it the same way, so `?status=Lukket` finds what was stored as `lukket`.
Status = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=40,
                                          pattern=r"^[A-Za-zÆØÅæøå0-9_]+$")]
RowId = Annotated[int, Field(ge=1, le=MAX_ID)]
ReportIdPath = Annotated[int, Path(ge=1, le=MAX_ID, description="The report's id")]


NUL = "\x00"
NUL_REASON = "must not contain a NUL character (U+0000), which a database cannot store"


class NoNul(BaseModel):
    """A request body whose text may not hold a NUL character: PostgreSQL cannot store one, so it would
    reach the database as an error. Refused with 422 naming the field."""

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        texts = value if isinstance(value, list) else [value]
        if any(isinstance(text, str) and NUL in text for text in texts):
            raise ValueError(NUL_REASON)
        return value


def without_nul(value: Any) -> Any:
    """Text of a delivered report with NUL characters removed, in nested objects and lists too: a NUL means
    nothing in a report's text and cannot be stored, and refusing the report over it would leave the case
    outside the service."""
    if isinstance(value, str):
        return value.replace(NUL, "") if NUL in value else value
    if isinstance(value, dict):
        return {key: without_nul(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_nul(item) for item in value]
    return value
