"""Field types the API shares: ISO 8601 dates and times in a sane range, and ids a row can have."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, TypeVar

from fastapi import Path
from pydantic import AfterValidator, BeforeValidator, Field

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
RowId = Annotated[int, Field(ge=1, le=MAX_ID)]
ReportIdPath = Annotated[int, Path(ge=1, le=MAX_ID, description="The report's id")]
