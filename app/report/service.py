"""Reading reports: one by id, by the source's case number, and filtered pages."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import Request
from starlette.responses import Response

from app.audit import service as audit
from app.auth.principal import Principal
from app.errors import FieldError, InvalidInput, NotFound, echo
from app.export import csv_response, xlsx_response
from app.pagination import Cursor
from app.report import export, queries
from app.report.models import Report, ReportScore
from app.report.provenance import Provenance, awaiting_review, official_codes
from app.report.schemas import (
    Classification,
    Explanation,
    LabelOut,
    Redactions,
    ReportDetail,
    ReportFilter,
    ReportingUnitOut,
    ReportListQuery,
    ReportPage,
    ReportSummary,
    SortField,
)
from app.taxonomy.models import CodeKind
from app.taxonomy.service import Taxonomy, load_taxonomy


def summary(report: Report) -> ReportSummary:
    """A report as a list shows it."""
    triples = [(lab.dimension, lab.code, lab.provenance) for lab in report.labels]
    return ReportSummary(
        id=report.id,
        source_system=report.source_system,
        external_id=report.external_id,
        title=report.title,
        reported_category=report.reported_category,
        category=report.category_code,
        category_mapped=report.category_code is not None,
        occurred_at=report.occurred_at,
        reported_at=report.reported_at,
        reporting_unit=ReportingUnitOut(
            department=report.department_code, agency=report.agency_code, unit=report.unit_name,
            unit_code=report.unit_code, as_sent=report.reporting_unit_text,
        ),
        status=report.status,
        severity=report.severity,
        target_groups=official_codes(triples, "target_group"),
        services_involved=official_codes(triples, "service"),
        confirmed_category=report.confirmed_category_code,
        confirmed_category_provenance=_provenance(report.confirmed_category_provenance),
        suggested_category=report.suggested_category_code,
        suggested_category_provenance=_provenance(report.suggested_category_provenance),
        flagged=awaiting_review(report.score is not None and report.score.flagged,
                                       report.confirmed_category_provenance),
        score=report.score.score if report.score else None,
        labels=[LabelOut(dimension=lab.dimension, code=lab.code, provenance=lab.provenance) for lab in report.labels],
    )


def detail(report: Report) -> ReportDetail:
    """A report with its free text: its summary and the fields only a detail has."""
    return ReportDetail(
        **dict(summary(report)),
        description=report.description,
        redactions=Redactions(identity_numbers=report.redacted_identity_numbers,
                              phone_numbers=report.redacted_phone_numbers, emails=report.redacted_emails),
        classification=classification(report.score),
        related_external_ids=[link.related_external_id for link in report.links],
        source_version=report.source_version,
        created_at=report.created_at,
        updated_at=report.updated_at,
    )


def classification(score: ReportScore | None) -> Classification | None:
    """The classifier's latest suggestion as every answer shows it (None when the report is unscored)."""
    if score is None:
        return None
    return Classification(
        model_version=score.model_version, score=score.score, threshold=score.threshold, flagged=score.flagged,
        target_groups=score.target_groups, services=score.services,
        explanation=[Explanation.model_validate(term) for term in score.explanation], scored_at=score.scored_at,
    )


def _provenance(stored: str | None) -> Provenance | None:
    return Provenance(stored) if stored is not None else None


def get_report(session: Session, report_id: int, departments: frozenset[str] | None = None) -> Report:
    """The report with this id; 404 when there is none or it belongs to a department not in `departments`."""
    report = session.get(Report, report_id)
    if report is None or not _visible(report, departments):
        raise NotFound(f"no report with id {report_id}")
    return report


def get_report_by_external(
    session: Session, source_system: str, external_id: str, departments: frozenset[str] | None = None
) -> Report:
    """The report with this case number in this source system; 404 as for get_report."""
    report = session.scalar(
        select(Report).where(Report.source_system == source_system, Report.external_id == external_id)
    )
    if report is None or not _visible(report, departments):
        raise NotFound(f"no report {echo(external_id)} from {echo(source_system)}")
    return report


def _visible(report: Report, departments: frozenset[str] | None) -> bool:
    # A report of another department answers exactly like a missing one, so ids cannot be probed.
    return departments is None or report.department_code in departments


def resolve_filter(
    taxonomy: Taxonomy, f: ReportFilter, local: ZoneInfo, departments: frozenset[str] | None = None
) -> queries.ResolvedFilter:
    """Check the codes of a filter and turn it into plain sets and UTC bounds; 422 for unknown codes."""
    errors: list[FieldError] = []
    categories = None
    if f.category is not None:
        category = taxonomy.find_category(f.category)
        if category is None:
            errors.append(FieldError(field="category", reason=f"unknown category '{echo(f.category)}'"))
        categories = frozenset(taxonomy.category_with_descendants(category or f.category))
    # Codes or labels; a filter also finds reports of retired codes.
    chosen: dict[CodeKind, set[str]] = {CodeKind.TARGET_GROUP: set(), CodeKind.SERVICE: set()}
    for kind, name, values in ((CodeKind.TARGET_GROUP, "target_group", f.target_group),
                               (CodeKind.SERVICE, "service", f.service)):
        for value in values:
            code = taxonomy.find_code(kind, value)
            if code is None:
                errors.append(FieldError(field=name, reason=f"unknown {kind.value} '{echo(value)}'; valid codes (their "
                                         f"labels are accepted too): {', '.join(sorted(taxonomy.codes[kind]))}"))
            else:
                chosen[kind].add(code)
    department = taxonomy.find_department(f.department) if f.department is not None else None
    if f.department is not None and department is None:
        errors.append(FieldError(field="department", reason=f"unknown department '{echo(f.department)}'"))
    agency = taxonomy.find_agency(f.agency) if f.agency is not None else None
    if f.agency is not None and agency is None:
        errors.append(FieldError(field="agency", reason=f"unknown agency '{echo(f.agency)}'"))
    if errors:
        raise InvalidInput("; ".join(f"{e.field}: {e.reason}" for e in errors), errors)

    def local_midnight(day: date) -> datetime:
        return datetime.combine(day, time(0), tzinfo=local)

    return queries.ResolvedFilter(
        categories=categories,
        target_groups=frozenset(chosen[CodeKind.TARGET_GROUP]),
        children_and_youth=f.children_and_youth,
        children_and_youth_groups=frozenset(taxonomy.children_and_youth_groups()),
        services=frozenset(chosen[CodeKind.SERVICE]),
        department=department,
        agency=agency,
        unit=f.unit,
        statuses=frozenset(s.casefold() for s in f.status),
        reported_from=local_midnight(f.reported_from) if f.reported_from else None,
        reported_before=local_midnight(f.reported_to + timedelta(days=1)) if f.reported_to else None,
        words=tuple(w.casefold() for w in (f.q or "").split()),
        visible_departments=departments,
        # Asking for the classifier's suggestions by provenance implies counting them.
        include_suggested=f.include_suggested or f.provenance is Provenance.CLASSIFIER,
        provenance=f.provenance.value if f.provenance else None,
    )


def list_reports(
    session: Session, query: ReportListQuery, local: ZoneInfo, departments: frozenset[str] | None, cursor_key: bytes
) -> ReportPage:
    """A page of reports matching the filter (within `departments`), and the cursor of the next page (signed
    with `cursor_key`)."""
    resolved = resolve_filter(load_taxonomy(session), query, local, departments)
    sort, order, limit = query.sort, query.order, query.limit
    ordering = f"{sort.value}:{order.value}"
    after = None
    if query.cursor:
        position = Cursor.decode(query.cursor, ordering, cursor_key, datetime)
        after = (position.value, position.last_id)
    rows = list(session.scalars(queries.list_reports(resolved, sort, order, limit + 1, after)))
    page, more = rows[:limit], len(rows) > limit
    next_cursor = None
    if more and page:
        last = page[-1]
        value = last.reported_at if sort is SortField.REPORTED_AT else last.occurred_sort_at
        next_cursor = Cursor(ordering, value, last.id).encode(cursor_key)
    return ReportPage(items=[summary(r) for r in page], next_cursor=next_cursor, limit=limit)


def export_reports(
    session: Session, maker: sessionmaker[Session], query: ReportListQuery, local: ZoneInfo,
    departments: frozenset[str] | None,
) -> tuple[list[str], Iterator[dict[str, Any]]]:
    """The columns and the (lazy) rows of an export of every report matching the filter."""
    resolved = resolve_filter(load_taxonomy(session), query, local, departments)
    columns = export.COLUMNS + (["description"] if query.include_description else [])
    return columns, export.rows(maker, resolved, query.include_description, local)


def start_export(session: Session, maker: sessionmaker[Session], local: ZoneInfo, request: Request,
                 principal: Principal, query: ReportListQuery, wanted: str, lang: str) -> Response:
    """Every report matching the filter as a streamed CSV (`wanted` "csv") or XLSX download, as the API and the
    pages start one: the filter is checked now (a 422, not a broken download), and the export's audit row lists
    every report that left once the body has been sent."""
    columns, data = export_reports(session, maker, query, local, principal.departments)
    event_id = audit.record(session, request, principal, f"report.export.{wanted}",
                            query=query.model_dump(mode="json", exclude={"cursor", "limit"}))
    respond = csv_response if wanted == "csv" else xlsx_response
    return respond(f"avvik.{wanted}", columns, audit.audited_export(maker, event_id, data), lang)
