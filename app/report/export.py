"""Exporting the report list: every matching report, read in keyset-paged chunks, streamed as CSV or XLSX."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.report import queries
from app.report.models import Report, ReportLabel, ReportScore
from app.report.provenance import awaiting_review
from app.report.schemas import SortField, SortOrder

CHUNK = 2000
COLUMNS = [
    "id", "source_system", "external_id", "reported_at", "occurred_at", "title", "reported_category",
    "confirmed_category", "confirmed_category_provenance", "suggested_category", "suggested_category_provenance",
    "flagged", "score", "department", "agency", "unit", "status", "target_groups", "services",
    "suggested_target_groups", "suggested_services",
]


# The report columns an export reads, by the name of the value they fill; the score comes by an outer join.
_REPORT_FIELDS = {
    "id": Report.id, "source_system": Report.source_system, "external_id": Report.external_id,
    "reported_at": Report.reported_at, "occurred_at": Report.occurred_at, "title": Report.title,
    "reported_category": Report.reported_category, "confirmed_category": Report.confirmed_category_code,
    "confirmed_category_provenance": Report.confirmed_category_provenance,
    "suggested_category": Report.suggested_category_code,
    "suggested_category_provenance": Report.suggested_category_provenance,
    "flagged": ReportScore.flagged, "score": ReportScore.score, "department": Report.department_code,
    "agency": Report.agency_code, "unit": Report.unit_name, "status": Report.status,
}


def row(values: dict[str, Any], labels: list[tuple[str, str, str]], local: ZoneInfo) -> dict[str, Any]:
    """One report as an export row: its columns, its times in local (Oslo) time, and its effective labels
    (dimension, code, provenance) with the classifier's suggestions apart."""
    line = dict(values)
    line["reported_at"] = values["reported_at"].astimezone(local)
    line["occurred_at"] = values["occurred_at"].astimezone(local) if values["occurred_at"] else None
    line["flagged"] = awaiting_review(values["flagged"], values["confirmed_category_provenance"])
    line["score"] = round(values["score"], 4) if values["score"] is not None else None
    for name, dimension, suggested in (("target_groups", "target_group", False), ("services", "service", False),
                                       ("suggested_target_groups", "target_group", True),
                                       ("suggested_services", "service", True)):
        line[name] = sorted(code for d, code, provenance in labels
                            if d == dimension and (provenance == "classifier") == suggested)
    return line


def rows(maker: sessionmaker[Session], f: queries.ResolvedFilter, with_description: bool,
         local: ZoneInfo) -> Iterator[dict[str, Any]]:
    """Every matching report, oldest first, in keyset-paged chunks read in a session of their own (the
    request's transaction has ended by the time the body streams). Each chunk is two statements of plain
    columns (no ORM objects, relationships or identity map), so memory stays flat however many there are
    and each chunk costs the same as the first."""
    fields = {**_REPORT_FIELDS, **({"description": Report.description} if with_description else {})}
    names = list(fields)
    after = None
    with maker() as session:
        while True:
            page = queries.list_reports(f, SortField.REPORTED_AT, SortOrder.ASC, CHUNK, after)
            chunk = [dict(zip(names, values, strict=True)) for values in session.execute(
                page.with_only_columns(*fields.values(), maintain_column_froms=True)
                .outerjoin(ReportScore, ReportScore.report_id == Report.id))]
            labels: dict[int, list[tuple[str, str, str]]] = defaultdict(list)
            if chunk:
                for report_id, dimension, code, provenance in session.execute(
                    select(ReportLabel.report_id, ReportLabel.dimension, ReportLabel.code, ReportLabel.provenance)
                    .where(ReportLabel.report_id.in_([line["id"] for line in chunk]))):
                    labels[report_id].append((dimension, code, provenance))
            # End the read before the chunk leaves: a long download pins no snapshot, and what the caller writes
            # meanwhile (the export's audit rows) is never inside a transaction this reader later rolls back.
            session.commit()
            for line in chunk:
                yield row(line, labels[line["id"]], local)
            if len(chunk) < CHUNK:
                return
            after = (chunk[-1]["reported_at"], chunk[-1]["id"])
