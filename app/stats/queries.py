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

from sqlalchemy import (
    Boolean,
    ColumnElement,
    CompoundSelect,
    Select,
    SQLColumnExpression,
    and_,
    case,
    extract,
    func,
    literal,
    null,
    or_,
    select,
    true,
    type_coerce,
    union_all,
)
from sqlalchemy.orm import aliased

from app.report import queries
from app.report.models import Report, ReportLabel
from app.review.labels import TARGET_CATEGORY, is_case_clause
from app.stats.models import EstimateBasis
from app.stats.pairs import AGENCY_SERVICE, SERVICE_AGENCY, UNIT_WORDS
from app.stats.privacy import EXACT, Shield
from app.stats.schemas import Dimension

LABEL_DIMENSIONS = {Dimension.TARGET_GROUP: "target_group", Dimension.SERVICE: "service"}
Rows = Select[*tuple[Any, ...]]  # a statement of several columns, each read by position or name


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


def counts(by: list[Dimension], f: queries.ResolvedFilter, days: Days, shield: Shield = EXACT) -> Rows:
    """(key columns…, report count, sum of record keys) per cell; a period comes as its reporting date, which
    the caller folds into months, quarters or years (grouping by the stored date reads the index in order: on PostgreSQL
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
        reported_on, report_id = first.reported_on, first.report_id
    else:
        statement = select(Report.id)
        for dimension in label_dimensions:
            label, label_conditions = aliases[dimension]
            statement = statement.join(label, label.report_id == Report.id)
            conditions += [*label_conditions, *days.clauses(label.reported_on)]
        conditions += where(f, days)
        reported_on, report_id = Report.reported_on, Report.id
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
    return statement.with_only_columns(*columns, func.count().label("n"), shield.key_sum(report_id).label("key")
                                       ).where(*conditions).group_by(*columns)


def monthly(by: list[Dimension], f: queries.ResolvedFilter, days: Days, kind: str,
            shield: Shield = EXACT) -> Rows:
    """`counts` with its days folded into months: (kind, [year, month,] other key columns…, count, key sum).

    The days are grouped first (the index order, see `counts`) and only their few hundred groups are folded
    by year and month, so the date functions, slow on PostgreSQL over a year of rows, run on a few rows."""
    inner = counts(by, f, days, shield).subquery("by_day")
    keys: list[Any] = []
    for dimension in by:
        if dimension is Dimension.PERIOD:
            keys += [extract("year", inner.c.day).label("year"), extract("month", inner.c.day).label("month")]
        else:
            keys.append(inner.c[dimension.value])
    return select(literal(kind).label("kind"), *keys, func.sum(inner.c.n).label("n"),
                  func.sum(inner.c.key).label("key")).group_by(*keys)


def total_row(by: list[Dimension], f: queries.ResolvedFilter, days: Days, kind: str,
              shield: Shield = EXACT) -> Rows:
    """The number of distinct reports under a filter, shaped as a row of `monthly` (keys null)."""
    width = sum(2 if d is Dimension.PERIOD else 1 for d in by)
    return select(literal(kind), *[null()] * width, func.count(), shield.key_sum(Report.id)).select_from(
        Report).where(*where(f, days))


def reported_range(f: queries.ResolvedFilter, days: Days) -> Rows:
    """The first and last reporting date under a filter (for filling empty periods)."""
    return select(func.min(Report.reported_on), func.max(Report.reported_on)).where(*where(f, days))


def _own_service_candidate() -> ColumnElement[Any]:
    """`pairs.reporting_service` before its last test, in SQL: the service the reporting agency is, or else
    the first service word in the unit's name (the report must still name that service)."""
    unit = queries.fold(Report.unit_name)
    by_unit = case(*[(unit.like(f"%{word}%"), service) for word, service in UNIT_WORDS.items()], else_=null())
    return case(*[(Report.agency_code == agency, service) for agency, service in AGENCY_SERVICE.items()],
                else_=by_unit)


def _agency_of(code: Any) -> ColumnElement[Any]:
    """`pairs.agency_of` in SQL."""
    return case(*[(code == service, agency) for service, agency in SERVICE_AGENCY.items()], else_="external")


def matrix(f: queries.ResolvedFilter, days: Days, shield: Shield = EXACT) -> CompoundSelect[*tuple[Any, ...]]:
    """The collaboration matrix in one statement: rows (kind, a, b, directed, count, key sum) where kind is 'service'
    (reports per service pair), 'agency' (reports per agency pair) or 'reports' (reports under the filter).

    The pairs of a report are those of `pairs.pairs`: from its own service (when `pairs.reporting_service`
    finds one) to each other service, directed, or else every unordered pair; an IT system makes no pair. An
    unordered pair comes once per report with a < b in the database's collation, which the caller puts in
    Python's order. An agency pair counts a report once however many of its service pairs map to it.
    """
    reports = (select(Report.id.label("report_id"), _own_service_candidate().label("candidate"))
               .where(*where(f, days)).cte("matrix_report"))
    label = aliased(ReportLabel)
    # Each report's services by the label's key (a few probes per report); its own service is the one the
    # reporting unit names, if the report names it too.
    own = func.max(case((label.code == reports.c.candidate, label.code))).over(partition_by=reports.c.report_id)
    named = (select(reports.c.report_id, own.label("own"), label.code)
             .join(label, and_(label.report_id == reports.c.report_id, label.dimension == "service",
                               label.provenance.in_(queries.label_provenances(f)), label.code != "it_system"))
             .cte("matrix_service"))
    a, b = named.alias("a"), named.alias("b")
    pairs = (select(a.c.report_id, a.c.code.label("a"), b.c.code.label("b"), a.c.own.is_not(None).label("directed"))
             .join(b, b.c.report_id == a.c.report_id)
             .where(or_(and_(a.c.own.is_(None), a.c.code < b.c.code),
                        and_(a.c.code == a.c.own, b.c.code != a.c.own)))
             .cte("matrix_pair"))
    first, second = _agency_of(pairs.c.a), _agency_of(pairs.c.b)
    # Each report once per agency pair (several of its service pairs may map to one), so that its record key
    # is added once.
    agencies = select(pairs.c.report_id, pairs.c.directed,
                      case((or_(pairs.c.directed, first <= second), first), else_=second).label("a"),
                      case((or_(pairs.c.directed, first <= second), second), else_=first).label("b")
                      ).distinct().subquery("matrix_agency")
    return union_all(
        select(literal("service").label("kind"), pairs.c.a, pairs.c.b, pairs.c.directed, func.count().label("n"),
               shield.key_sum(pairs.c.report_id).label("key"))
        .group_by(pairs.c.a, pairs.c.b, pairs.c.directed),
        select(literal("agency"), agencies.c.a, agencies.c.b, agencies.c.directed, func.count(),
               shield.key_sum(agencies.c.report_id))
        .group_by(agencies.c.a, agencies.c.b, agencies.c.directed),
        select(literal("reports"), null(), null(), null(), func.count(), shield.key_sum(reports.c.report_id)
               ).select_from(reports),
    )


ESTIMATE_BANDS = ("flag_high", "flag_low", "unflagged", "unscored")
REVIEWED_BANDS = ("flag_high", "flag_low", "unflagged")  # unscored reports have no reviews of the model


def estimate_basis(f: queries.ResolvedFilter, days: Days, version: str | None, threshold: float,
                   shield: Shield = EXACT) -> Rows:
    """One row over the summary rows (migration 0008): the confirmed reports and the undecided ones (no
    confirmed target category, no review) per score band in the period, and the latest reviews made with the
    active model (of every period) per band, with how many of them found a case. Each count is named
    (`confirmed`, a band of ESTIMATE_BANDS, `<band>_reviewed`, `<band>_positives` for REVIEWED_BANDS) and
    followed by the sum of its reports' record keys (`<name>_key`)."""
    basis = EstimateBasis
    middle = (threshold + 1) / 2
    record_key = shield.record_key(basis.report_id)

    def keyed(condition: ColumnElement[bool], name: str) -> tuple[ColumnElement[int], ColumnElement[int]]:
        # The count and the sum of the record keys of the same reports (the cell key of app.privacy.cellkey).
        return (func.coalesce(func.sum(case((condition, 1), else_=0)), 0).label(name),
                func.coalesce(func.sum(case((condition, record_key), else_=0)), 0).label(f"{name}_key"))

    flagged, review_flagged = _condition(basis.flagged), _condition(basis.review_flagged)
    undecided = and_(or_(basis.confirmed_category_code.is_(None), basis.confirmed_category_code != TARGET_CATEGORY),
                     ~basis.reviewed)
    bands = {
        "flag_high": and_(flagged, basis.score >= middle),
        "flag_low": and_(flagged, basis.score < middle),
        "unflagged": ~flagged,
        "unscored": basis.flagged.is_(None),
    }
    population_row = select(*keyed(basis.confirmed_category_code == TARGET_CATEGORY, "confirmed"),
                            *[column for name in ESTIMATE_BANDS for column in keyed(and_(undecided, bands[name]), name)]
                            ).where(*days.clauses(basis.reported_on))
    report_clauses = queries.filter_clauses(replace(f, reported_from=None, reported_before=None))
    if report_clauses:  # a filter on other report columns: the summary rows of the reports it keeps
        population_row = population_row.join(Report, Report.id == basis.report_id).where(*report_clauses)
    review_bands = {
        "flag_high": and_(review_flagged, basis.review_score >= middle),
        "flag_low": and_(review_flagged, or_(basis.review_score.is_(None), basis.review_score < middle)),
        "unflagged": and_(~review_flagged, _condition(basis.review_audit_sample)),
    }
    positive = is_case_clause(basis.review_decision, basis.review_category_code)
    review_row = select(*[column for name in REVIEWED_BANDS for column in (
        *keyed(review_bands[name], f"{name}_reviewed"),
        *keyed(and_(review_bands[name], positive), f"{name}_positives"))]
    ).where(basis.reviewed, basis.review_model_version == version)
    counted, reviews = population_row.subquery("counted"), review_row.subquery("reviews")
    return select(counted, reviews).select_from(counted.join(reviews, true()))


def _condition(column: SQLColumnExpression[bool | None]) -> ColumnElement[bool]:
    """A nullable boolean column as a condition (the SQL is the column itself; null reads as not true)."""
    return type_coerce(column, Boolean)
