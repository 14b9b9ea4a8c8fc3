"""CSV exports as Norwegian Excel opens them: UTF-8 with a byte-order mark, semicolon-separated, streamed.

Norwegian Excel reads a semicolon as the column separator because the comma is its decimal separator:
numbers with a fraction are therefore written with a decimal comma (0,25), whole numbers as they are,
true/false as in JSON, lists comma-joined in one cell.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Annotated, Any, Literal

from fastapi import Query
from fastapi.responses import StreamingResponse

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
CSV_FORMAT_DESCRIPTION = ("csv: the same answer as a CSV table (as is `Accept: text/csv`): UTF-8 with BOM, "
                          "semicolons, decimal comma")
# The `format` query parameter of a route that answers JSON or, when asked, CSV.
CsvFormat = Annotated[Literal["json", "csv"], Query(description=CSV_FORMAT_DESCRIPTION)]


def csv_answer(description: str) -> dict[str, Any]:
    """The OpenAPI 200 answer of a route that answers JSON or, when asked, CSV."""
    return {"description": f"{description} as JSON, or as CSV with format=csv or Accept: text/csv "
                           "(UTF-8 with BOM, semicolon-separated; see the README)",
            "content": {"text/csv": {"schema": {"type": "string"}}}}


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one row: {"a": {"b": 1}} becomes {"a.b": 1}; other values stay as they are."""
    row: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            row.update(flatten(value, f"{prefix}{key}."))
        else:
            row[f"{prefix}{key}"] = value
    return row


def columns_of(rows: Sequence[Mapping[str, Any]], first: Sequence[str] = ()) -> list[str]:
    """Every key of the rows, in order of first appearance, with `first` leading (for rows whose keys vary)."""
    seen = dict.fromkeys(first)
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


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
