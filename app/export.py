"""CSV exports as Norwegian Excel opens them: UTF-8 with a byte-order mark, semicolon-separated, streamed."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from fastapi.responses import StreamingResponse

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"


def csv_lines(columns: Sequence[str], rows: Iterable[dict[str, Any]], chunk_rows: int = 500) -> Iterator[bytes]:
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


def cell(value: Any) -> str:
    """A value as spreadsheet text: lists comma-joined, formula-like text made inert."""
    if value is None:
        return ""
    if isinstance(value, list | tuple | set):
        return ",".join(str(v) for v in value)
    text = str(value)
    # A cell starting with = + - @ is run as a formula by spreadsheets (CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_response(filename: str, columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> StreamingResponse:
    """A streamed CSV download."""
    return StreamingResponse(
        csv_lines(columns, rows), media_type=CSV_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
