"""CSV exports as Norwegian Excel opens them: UTF-8 with a byte-order mark, semicolon-separated, streamed.

Norwegian Excel reads a semicolon as the column separator because the comma is its decimal separator:
numbers with a fraction are therefore written with a decimal comma (0,25), whole numbers as they are,
true/false as in JSON, lists comma-joined in one cell.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from fastapi.responses import StreamingResponse

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"


def csv_lines(columns: Sequence[str], rows: Iterable[dict[str, Any]], chunk_rows: int = 2000) -> Iterator[bytes]:
    """The CSV document in chunks: BOM and header first, then rows as they come (never all in memory)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    buffer.write("\ufeff")
    writer.writerow(columns)
    pending = 1
    for row in rows:
        writer.writerow([cell(row.get(c)) for c in columns])
        pending += 1
        if pending >= chunk_rows:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    if pending:
        yield buffer.getvalue().encode("utf-8")


def wants_csv(requested_format: str, accept: str | None) -> bool:
    """Whether a request asks for CSV: `format=csv`, or an Accept header naming text/csv."""
    return requested_format == "csv" or "text/csv" in (accept or "")


_FORMULA_STARTS = frozenset("=+-@\t\r")


def cell(value: Any) -> str:
    """A value as spreadsheet text: numbers as Norwegian Excel reads them, lists comma-joined, formula-like
    text made inert."""
    kind = type(value)
    if kind is str:  # the common case first: an export writes millions of cells
        return "'" + value if value[:1] in _FORMULA_STARTS else value
    if value is None:
        return ""
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)  # a negative number is a number, not a formula
    if kind is float:
        return repr(value).replace(".", ",")
    text = ",".join(str(v) for v in value) if isinstance(value, list | tuple | set) else str(value)
    # A cell starting with = + - @ is run as a formula by spreadsheets (CSV injection).
    return "'" + text if text[:1] in _FORMULA_STARTS else text


def csv_response(filename: str, columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> StreamingResponse:
    """A streamed CSV download."""
    return StreamingResponse(
        csv_lines(columns, rows), media_type=CSV_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
