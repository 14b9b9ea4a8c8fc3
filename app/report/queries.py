"""Pure query builders for reports: a resolved filter in, a Select out; no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, false, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import GenericFunction
from sqlalchemy.types import String

from app.report.models import Report, ReportLabel
from app.report.schemas import SortField, SortOrder


class fold(GenericFunction[str]):
    """Case-fold text in SQL, Norwegian letters included (SQLite's lower() folds only ASCII)."""

    type = String()
    inherit_cache = True


@compiles(fold, "sqlite")
def _fold_sqlite(element: fold, compiler: Any, **kw: Any) -> str:
    return f"casefold({compiler.process(element.clauses, **kw)})"


@compiles(fold)
def _fold_default(element: fold, compiler: Any, **kw: Any) -> str:
    return f"lower({compiler.process(element.clauses, **kw)})"


@dataclass(frozen=True)
class ResolvedFilter:
    """A report filter with taxonomy lookups done: plain code sets and UTC bounds."""

    categories: frozenset[str] | None = None
    target_groups: frozenset[str] = frozenset()
    children_and_youth: bool | None = None
    children_and_youth_groups: frozenset[str] = frozenset()
    services: frozenset[str] = frozenset()
    department: str | None = None
    agency: str | None = None
    unit: str | None = None
    statuses: frozenset[str] = frozenset()
    reported_from: datetime | None = None
    reported_before: datetime | None = None
    words: tuple[str, ...] = ()
    visible_departments: frozenset[str] | None = None  # the caller's grant; None: every department
    include_suggested: bool = False
    provenance: str | None = None


def label_provenances(f: ResolvedFilter) -> list[str]:
    """The provenances of labels a filter counts."""
    kinds = ["adviser", "reporter"]
    return [*kinds, "classifier"] if f.include_suggested else kinds


def _has_label(dimension: str, codes: frozenset[str], f: ResolvedFilter) -> ColumnElement[bool]:
    return exists().where(ReportLabel.report_id == Report.id, ReportLabel.dimension == dimension,
                          ReportLabel.code.in_(sorted(codes)), ReportLabel.provenance.in_(label_provenances(f)))


def category_columns(f: ResolvedFilter) -> tuple[Any, Any]:
    """The category code and provenance columns a filter counts: with or without suggestions."""
    if f.include_suggested:
        return Report.suggested_category_code, Report.suggested_category_provenance
    return Report.confirmed_category_code, Report.confirmed_category_provenance


def filter_clauses(f: ResolvedFilter) -> list[ColumnElement[bool]]:
    """The WHERE clauses of a filter."""
    clauses: list[ColumnElement[bool]] = []
    if f.visible_departments is not None:
        clauses.append(Report.department_code.in_(sorted(f.visible_departments)))
    category, provenance = category_columns(f)
    if f.categories is not None:
        clauses.append(category.in_(sorted(f.categories)) if f.categories else false())
    if f.provenance is not None:
        clauses.append(provenance == f.provenance)
    if f.target_groups:
        clauses.append(_has_label("target_group", f.target_groups, f))
    if f.children_and_youth is True:
        clauses.append(_has_label("target_group", f.children_and_youth_groups, f))
    elif f.children_and_youth is False:
        clauses.append(~_has_label("target_group", f.children_and_youth_groups, f))
    if f.services:
        clauses.append(_has_label("service", f.services, f))
    if f.department:
        clauses.append(Report.department_code == f.department)
    if f.agency:
        clauses.append(Report.agency_code == f.agency)
    if f.unit:
        clauses.append(or_(Report.unit_code == f.unit, fold(Report.unit_name) == f.unit.casefold()))
    if f.statuses:
        clauses.append(Report.status.in_(sorted(f.statuses)))
    if f.reported_from:
        clauses.append(Report.reported_at >= f.reported_from)
    if f.reported_before:
        clauses.append(Report.reported_at < f.reported_before)
    for word in f.words:
        pattern = "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        clauses.append(or_(fold(Report.title).like(pattern, escape="\\"),
                           fold(Report.description).like(pattern, escape="\\")))
    return clauses


def sort_column(sort: SortField) -> Any:
    """The column a sort field orders by (occurrence falls back to the reporting time)."""
    return Report.reported_at if sort is SortField.REPORTED_AT else Report.occurred_sort_at


def list_reports(
    f: ResolvedFilter, sort: SortField, order: SortOrder, limit: int, after: tuple[datetime, int] | None
) -> Select[Report]:
    """One page of reports in a stable order (sort column, then id), starting after a keyset position."""
    column = sort_column(sort)
    query = select(Report).where(*filter_clauses(f))
    if after is not None:
        value, last_id = after
        # The keyset condition (t > x OR t = x AND id > y) is not an index range for PostgreSQL: it reads
        # the sort index from the start on every page (126 ms a page 88 % into a million reports). The same
        # condition with its bound also said plainly (t >= x) starts the index scan at the position.
        if order is SortOrder.DESC:
            query = query.where(column <= value, or_(column < value, and_(column == value, Report.id < last_id)))
        else:
            query = query.where(column >= value, or_(column > value, and_(column == value, Report.id > last_id)))
    if order is SortOrder.DESC:
        query = query.order_by(column.desc(), Report.id.desc())
    else:
        query = query.order_by(column.asc(), Report.id.asc())
    return query.limit(limit)
