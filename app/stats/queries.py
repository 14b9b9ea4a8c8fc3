"""Pure query builders for statistics: a resolved filter in, an aggregate Select out; no I/O."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, extract, func, select
from sqlalchemy.orm import aliased

from app.report import queries
from app.report.models import Report
from app.review.models import ReportLabel
from app.stats.schemas import Dimension

LABEL_DIMENSIONS = {Dimension.TARGET_GROUP: "target_group", Dimension.SERVICE: "service"}


def counts(by: list[Dimension], f: queries.ResolvedFilter) -> Select[Any]:
    """(key columns…, distinct report count) per cell; periods come as (year, month) integer pairs."""
    category, provenance = queries.category_columns(f)
    columns: list[Any] = []
    statement = select(Report.id)
    for dimension in by:
        if dimension is Dimension.PERIOD:
            columns += [extract("year", Report.reported_on).label("year"),
                        extract("month", Report.reported_on).label("month")]
        elif dimension in LABEL_DIMENSIONS:
            label = aliased(ReportLabel)
            statement = statement.join(label, (label.report_id == Report.id)
                                       & (label.dimension == LABEL_DIMENSIONS[dimension])
                                       & label.provenance.in_(queries.label_provenances(f)))
            columns.append(label.code.label(dimension.value))
        else:
            columns.append({
                Dimension.CATEGORY: category, Dimension.PROVENANCE: provenance,
                Dimension.DEPARTMENT: Report.department_code, Dimension.AGENCY: Report.agency_code,
                Dimension.UNIT: Report.unit_name, Dimension.STATUS: Report.status,
            }[dimension].label(dimension.value))
    return (statement.with_only_columns(*columns, func.count(func.distinct(Report.id)))
            .where(*queries.filter_clauses(f)).group_by(*columns))


def total(f: queries.ResolvedFilter) -> Select[Any]:
    """The number of distinct reports under a filter."""
    return select(func.count()).select_from(Report).where(*queries.filter_clauses(f))


def reported_range(f: queries.ResolvedFilter) -> Select[Any]:
    """The first and last reporting date under a filter (for filling empty periods)."""
    return select(func.min(Report.reported_on), func.max(Report.reported_on)).where(*queries.filter_clauses(f))


def report_services(f: queries.ResolvedFilter) -> Select[Any]:
    """(report id, agency, unit, service code or None) for every report under a filter and its services."""
    label = aliased(ReportLabel)
    return (select(Report.id, Report.agency_code, Report.unit_name, label.code)
            .outerjoin(label, (label.report_id == Report.id) & (label.dimension == "service")
                       & label.provenance.in_(queries.label_provenances(f)))
            .where(*queries.filter_clauses(f)).order_by(Report.id))
