"""CSV exports as Norwegian Excel opens them: UTF-8 with a byte-order mark, semicolon-separated, streamed.

Norwegian Excel reads a semicolon as the column separator because the comma is its decimal separator:
numbers with a fraction are therefore written with a decimal comma (0,25), whole numbers as they are,
true/false as in JSON, lists comma-joined in one cell.
"""

from __future__ import annotations

import csv
import io
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import Query
from fastapi.responses import StreamingResponse

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_FORMAT_DESCRIPTION = ("csv: the same answer as a CSV table (as is `Accept: text/csv`): UTF-8 with BOM, "
                          "semicolons, decimal comma")
# The `format` query parameter of a route that answers JSON or, when asked, CSV.
CsvFormat = Annotated[Literal["json", "csv"], Query(description=CSV_FORMAT_DESCRIPTION)]


def csv_answer(description: str) -> dict[str, Any]:
    """The OpenAPI 200 answer of a route that answers JSON or, when asked, CSV."""
    return {"description": f"{description} as JSON, or as CSV with format=csv or Accept: text/csv "
                           "(UTF-8 with BOM, semicolon-separated; see the README)",
            "content": {"text/csv": {"schema": {"type": "string"}}}}


# The `lang` parameter of an export: column headings as the API names them, or in Norwegian for people.
HeadingLanguage = Literal["en", "nb"]
HEADING_LANGUAGE_DESCRIPTION = ("Exports: column headings as the API's field names (`en`, the default, for programs) "
                                "or in Norwegian (`nb`, for people)")

# Norwegian headings of export columns; a column not named here keeps its API name.
HEADINGS_NB = {
    "id": "ID", "position": "Plass i køen", "audit_sample": "Kontrollutvalg", "source_system": "Kildesystem",
    "external_id": "Saksnummer", "reported_at": "Registrert (norsk tid)",
    "occurred_at": "Hendelsestidspunkt (norsk tid)", "title": "Tittel", "description": "Beskrivelse",
    "reported_category": "Meldt kategori", "confirmed_category": "Kategori",
    "confirmed_category_provenance": "Kategori satt av", "suggested_category": "Foreslått kategori",
    "suggested_category_provenance": "Foreslått kategori satt av", "flagged": "Flagget", "score": "Skår",
    "department": "Byrådsavdeling", "agency": "Etat", "unit": "Enhet", "status": "Status",
    "target_groups": "Målgrupper", "services": "Tjenester", "suggested_target_groups": "Foreslåtte målgrupper",
    "suggested_services": "Foreslåtte tjenester",
}


def headings(columns: Sequence[str], lang: str = "en") -> list[str]:
    """The heading line of an export: the API's column names, or Norwegian headings with `lang="nb"`."""
    return [HEADINGS_NB.get(c, c) for c in columns] if lang == "nb" else list(columns)


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


def csv_lines(columns: Sequence[str], rows: Iterable[dict[str, Any]], chunk_rows: int = 2000,
              heading_line: Sequence[str] | None = None) -> Iterator[bytes]:
    """The CSV document in chunks: BOM and header first, then rows as they come (never all in memory)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    buffer.write("\ufeff")
    writer.writerow([inert(h) for h in heading_line or columns])
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
# Control characters (C0 but tab, line feed and carriage return; DEL; C1): a workbook cannot hold them, and a
# spreadsheet that drops them would see a formula behind them ("\x01=HYPERLINK(…)"). Removed before anything else.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def clean_text(text: str) -> str:
    """Text without the control characters a spreadsheet cannot hold or would skip."""
    return _CONTROL.sub("", text)


def looks_like_formula(text: str) -> bool:
    """Whether a spreadsheet could run the text as a formula (CSV injection): it starts, after any
    spaces, with = + - @ or a tab or carriage return."""
    return text[:1] in _FORMULA_STARTS or text.lstrip(" ")[:1] in _FORMULA_STARTS


def inert(text: str) -> str:
    """Text a spreadsheet shows and never runs: control characters removed first, then a formula-like
    start guarded with an apostrophe."""
    text = clean_text(text)
    return "'" + text if looks_like_formula(text) else text


def cell(value: Any) -> str:
    """A value as CSV text: numbers as Norwegian Excel reads them, times as ISO 8601 with their offset,
    lists comma-joined, formula-like text made inert."""
    kind = type(value)
    if kind is str:  # the common case first: an export writes millions of cells
        return inert(value)
    if value is None:
        return ""
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)  # a negative number is a number, not a formula made inert
    if kind is float:
        return repr(value).replace(".", ",")
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    return inert(",".join(str(v) for v in value) if isinstance(value, list | tuple | set) else str(value))


def csv_response(filename: str, columns: Sequence[str], rows: Iterable[dict[str, Any]],
                 lang: str = "en") -> StreamingResponse:
    """A streamed CSV download."""
    return StreamingResponse(
        csv_lines(columns, rows, heading_line=headings(columns, lang)), media_type=CSV_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


# Column widths of an XLSX export, in characters; others get the width of their heading, at least 12.
_WIDTHS = {"title": 60, "description": 90, "reported_at": 17, "occurred_at": 17, "external_id": 18,
           "reported_category": 32, "unit": 30, "target_groups": 30, "services": 30,
           "suggested_target_groups": 30, "suggested_services": 30, "confirmed_category": 24,
           "suggested_category": 24}
XLSX_TIME_FORMAT = "dd.mm.yyyy hh:mm"


def xlsx_chunks(columns: Sequence[str], rows: Iterable[dict[str, Any]], lang: str = "en") -> Iterator[bytes]:
    """An XLSX workbook written row by row (openpyxl's write-only mode spools rows to disk), then streamed.

    Every text is a text cell, whatever it starts with, so no cell is ever a formula; times are date cells in
    the time they carry (the report exports give Oslo time); the heading line is frozen and filtered."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.utils import get_column_letter

    book = Workbook(write_only=True)
    sheet = book.create_sheet("avvik")
    heading_line = headings(columns, lang)
    for index, (column, heading) in enumerate(zip(columns, heading_line, strict=True), start=1):
        sheet.column_dimensions[get_column_letter(index)].width = _WIDTHS.get(column, max(12, len(heading) + 2))
    sheet.freeze_panes = "A2"  # sheet views are written before the first row: set it now

    def typed(value: Any) -> WriteOnlyCell:
        if value is None or isinstance(value, bool | int | float):
            return WriteOnlyCell(sheet, value)
        if isinstance(value, datetime):
            # A workbook has no time zones: the local wall-clock time the value carries.
            moment = WriteOnlyCell(sheet, value.replace(tzinfo=None))
            moment.number_format = XLSX_TIME_FORMAT
            return moment
        text = WriteOnlyCell(sheet, clean_text(
            ",".join(str(v) for v in value) if isinstance(value, list | tuple | set) else str(value)))
        text.data_type = "s"  # never a formula or an error value, whatever the text starts with
        if looks_like_formula(text.value):
            text.quotePrefix = True  # and it stays text when a person edits the cell
        return text

    sheet.append([typed(h) for h in heading_line])
    count = 0
    for item in rows:
        sheet.append([typed(item.get(c)) for c in columns])
        count += 1
    sheet.auto_filter.ref = f"A1:{get_column_letter(max(len(columns), 1))}{count + 1}"  # written at close
    with tempfile.TemporaryFile() as handle:
        book.save(handle)
        handle.seek(0)
        while block := handle.read(64 * 1024):
            yield block


def xlsx_response(filename: str, columns: Sequence[str], rows: Iterable[dict[str, Any]],
                  lang: str = "en") -> StreamingResponse:
    """A streamed XLSX download."""
    return StreamingResponse(xlsx_chunks(columns, rows, lang), media_type=XLSX_MEDIA_TYPE,
                             headers={"Content-Disposition": f'attachment; filename="{filename}"'})
