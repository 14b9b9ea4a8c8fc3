"""Pure query builders for statistics: a resolved filter in, an aggregate Select out; no I/O.

Statistics bound a period by the Oslo reporting date (`reported_on`) rather than by `reported_at` between
two UTC instants: the two are the same condition (`reported_on` is the local date of `reported_at`, and
the instants are local midnights), but the date is what the period columns group by and what the
statistics indexes (migration 0007) are ordered by.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, select
from sqlalchemy.orm import aliased

from app.report import queries
from app.report.models import Report
from app.review.models import ReportLabel
from app.stats.schemas import Dimension

LABEL_DIMENSIONS = {Dimension.TARGET_GROUP: "target_group", Dimension.SERVICE: "service"}


@dataclass(frozen=True)
class Days:
    """An inclusive range of Oslo reporting dates; None leaves that side open."""

    first: date | None = None
    last: date | None = None

    def clauses(self, column: Any) -> list[ColumnElement[bool]]:
        """The range as conditions on a date column."""
        return [c for c in (column >= self.first if self.first else None,
                            column <= self.last if self.last else None) if c is not None]


def where(f: queries.ResolvedFilter, days: Days) -> list[ColumnElement[bool]]:
    """The filter's conditions on reports, with its period as reporting dates."""
    return [*queries.filter_clauses(replace(f, reported_from=None, reported_before=None)),
            *days.clauses(Report.reported_on)]


def _label(dimension: Dimension, f: queries.ResolvedFilter) -> tuple[Any, list[ColumnElement[bool]]]:
    label = aliased(ReportLabel)
    return label, [label.dimension == LABEL_DIMENSIONS[dimension], label.provenance.in_(queries.label_provenances(f))]


def counts(by: list[Dimension], f: queries.ResolvedFilter, days: Days) -> Select[Any]:
    """(key columns…, report count) per cell; a period comes as its reporting date, which the caller folds
    into months, quarters or years (grouping by the stored date reads the index in order: on PostgreSQL
    about five times faster than grouping by extract(year), extract(month)).

    A report is in a cell once: one label row per (report, dimension, code), report columns single-valued,
    so count(*) counts reports. When the filter says nothing but the period and every dimension is a
    period or a label, the labels alone answer (their copy of the reporting date); otherwise labels are
    joined to the filtered reports, each label side restricted to the period too.
    """
    report_clauses = queries.filter_clauses(replace(f, reported_from=None, reported_before=None))
    label_dimensions = [d for d in by if d in LABEL_DIMENSIONS]
    labels_only = bool(label_dimensions) and not report_clauses and all(
        d in LABEL_DIMENSIONS or d is Dimension.PERIOD for d in by)
    category, provenance = queries.category_columns(f)
    aliases = {d: _label(d, f) for d in label_dimensions}
    columns: list[Any] = []
    conditions: list[ColumnElement[bool]] = []
    if labels_only:
        first, first_conditions = aliases[label_dimensions[0]]
        statement = select(first.report_id)
        conditions += [*first_conditions, *days.clauses(first.reported_on)]
        for dimension in label_dimensions[1:]:
            label, label_conditions = aliases[dimension]
            statement = statement.join(label, label.report_id == first.report_id)
            conditions += [*label_conditions, *days.clauses(label.reported_on)]
        reported_on = first.reported_on
    else:
        statement = select(Report.id)
        for dimension in label_dimensions:
            label, label_conditions = aliases[dimension]
            statement = statement.join(label, label.report_id == Report.id)
            conditions += [*label_conditions, *days.clauses(label.reported_on)]
        conditions += where(f, days)
        reported_on = Report.reported_on
    for dimension in by:
        if dimension is Dimension.PERIOD:
            columns.append(reported_on.label("day"))
        elif dimension in LABEL_DIMENSIONS:
            columns.append(aliases[dimension][0].code.label(dimension.value))
        else:
            columns.append({
                Dimension.CATEGORY: category, Dimension.PROVENANCE: provenance,
                Dimension.DEPARTMENT: Report.department_code, Dimension.AGENCY: Report.agency_code,
                Dimension.UNIT: Report.unit_name, Dimension.STATUS: Report.status,
            }[dimension].label(dimension.value))
    return statement.with_only_columns(*columns, func.count()).where(*conditions).group_by(*columns)


def total(f: queries.ResolvedFilter, days: Days) -> Select[Any]:
    """The number of distinct reports under a filter."""
    return select(func.count()).select_from(Report).where(*where(f, days))


def reported_range(f: queries.ResolvedFilter, days: Days) -> Select[Any]:
    """The first and last reporting date under a filter (for filling empty periods)."""
    return select(func.min(Report.reported_on), func.max(Report.reported_on)).where(*where(f, days))


def report_services(f: queries.ResolvedFilter, days: Days) -> Select[Any]:
    """(report id, agency, unit, service code or None) for every report under a filter and its services."""
    label = aliased(ReportLabel)
    # The labels' own copy of the date narrows the label side to the period as well.
    return (select(Report.id, Report.agency_code, Report.unit_name, label.code)
            .outerjoin(label, and_(label.report_id == Report.id, label.dimension == "service",
                                   label.provenance.in_(queries.label_provenances(f)),
                                   *days.clauses(label.reported_on)))
            .where(*where(f, days)))
