"""Exporting the report list: every matching report, read in keyset-paged chunks, streamed as CSV or XLSX."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from app.report import queries
from app.report.models import Report
from app.report.schemas import SortField, SortOrder

CHUNK = 1000
COLUMNS = [
    "id", "source_system", "external_id", "reported_at", "occurred_at", "title", "reported_category",
    "confirmed_category", "confirmed_category_provenance", "suggested_category", "suggested_category_provenance",
    "flagged", "score", "department", "agency", "unit", "status", "target_groups", "services",
    "suggested_target_groups", "suggested_services",
]


def row(report: Report, with_description: bool) -> dict[str, Any]:
    """One report as an export row (effective labels; suggestions apart)."""
    confirmed = [lab for lab in report.labels if lab.provenance != "classifier"]
    suggested = [lab for lab in report.labels if lab.provenance == "classifier"]
    values: dict[str, Any] = {
        "id": report.id, "source_system": report.source_system, "external_id": report.external_id,
        "reported_at": report.reported_at.isoformat(),
        "occurred_at": report.occurred_at.isoformat() if report.occurred_at else None,
        "title": report.title, "reported_category": report.reported_category,
        "confirmed_category": report.confirmed_category_code,
        "confirmed_category_provenance": report.confirmed_category_provenance,
        "suggested_category": report.suggested_category_code,
        "suggested_category_provenance": report.suggested_category_provenance,
        "flagged": bool(report.score and report.score.flagged),
        "score": round(report.score.score, 4) if report.score else None,
        "department": report.department_code, "agency": report.agency_code, "unit": report.unit_name,
        "status": report.status,
        "target_groups": [lab.code for lab in confirmed if lab.dimension == "target_group"],
        "services": [lab.code for lab in confirmed if lab.dimension == "service"],
        "suggested_target_groups": [lab.code for lab in suggested if lab.dimension == "target_group"],
        "suggested_services": [lab.code for lab in suggested if lab.dimension == "service"],
    }
    if with_description:
        values["description"] = report.description
    return values


def rows(maker: sessionmaker[Session], f: queries.ResolvedFilter, with_description: bool) -> Iterator[dict[str, Any]]:
    """Every matching report, oldest first, a chunk at a time in a session of its own (the request's
    transaction has ended by the time the body streams); memory stays flat however many there are."""
    after = None
    with maker() as session:
        while True:
            chunk = list(session.scalars(queries.list_reports(f, SortField.REPORTED_AT, SortOrder.ASC, CHUNK, after)))
            for report in chunk:
                yield row(report, with_description)
            if len(chunk) < CHUNK:
                return
            after = (chunk[-1].reported_at, chunk[-1].id)
            session.expunge_all()


def xlsx_chunks(columns: list[str], data: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    """An XLSX workbook written row by row (openpyxl's write-only mode spools rows to disk), then streamed."""
    from openpyxl import Workbook

    from app.export import cell

    book = Workbook(write_only=True)
    sheet = book.create_sheet("avvik")
    sheet.append(columns)
    for item in data:
        sheet.append([cell(item.get(c)) for c in columns])
    with tempfile.TemporaryFile() as handle:
        book.save(handle)
        handle.seek(0)
        while block := handle.read(64 * 1024):
            yield block
