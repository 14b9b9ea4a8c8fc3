"""Statistics as CSV tables (pure): every answer of the statistics API flattened into one table.

Each table carries everything its JSON answer does, so a CSV parses back to the same answer:

- a count that is hidden from a role that may not see single cases reads `suppressed` (never a number,
  never an empty cell, so that it cannot be mistaken for zero or for "not applicable");
- lists (services, units, words, ids) are comma-joined in one cell;
- where an answer has figures beside its table (the matrix's number of reports, how many reports were
  compared), they follow the data lines: the first column, `row`, names what a line is, and a summary
  line's figure is in the last column, `value`, which data lines leave empty.

The file format itself (UTF-8 with BOM, semicolons, decimal comma) is `app.export`'s.
"""

from __future__ import annotations

from typing import Any

from app.report.schemas import ReportSummary
from app.stats.schemas import CellOut, CountsOut, EstimateOut, MatrixOut, RecurringOut, SimilarOut, TrendOut

SUPPRESSED = "suppressed"

Table = tuple[list[str], list[dict[str, Any]]]


def _cell(cell: CellOut | None) -> Any:
    if cell is None:
        return None
    return SUPPRESSED if cell.suppressed and cell.value is None else cell.value


def counts_table(out: CountsOut) -> Table:
    """One line per cell (row=cell), then the distinct reports under the filter (row=total)."""
    dimensions = [d.value for d in out.by]
    suggested = out.total.with_suggestions is not None or any(r.with_suggestions is not None for r in out.rows)
    columns = ["row", *dimensions, "confirmed", *(["with_suggestions"] if suggested else [])]
    rows = [{"row": "cell", **{d: row.key.get(d) for d in dimensions}, "confirmed": _cell(row.confirmed),
             "with_suggestions": _cell(row.with_suggestions)} for row in out.rows]
    rows.append({"row": "total", "confirmed": _cell(out.total.confirmed),
                 "with_suggestions": _cell(out.total.with_suggestions)})
    return columns, rows


TREND_COLUMNS = ["period", "count", "suppressed", "all_reports", "share", "change_from_previous",
                 "change_from_last_year"]


def trend_table(out: TrendOut) -> Table:
    """One line per period; on a suppressed line every figure the role may not see reads `suppressed`."""
    rows = []
    for point in out.points:
        line = point.model_dump()
        if point.suppressed:
            for name in ("count", "all_reports", "share", "change_from_previous", "change_from_last_year"):
                if line[name] is None:
                    line[name] = SUPPRESSED
        rows.append(line)
    return TREND_COLUMNS, rows


MATRIX_COLUMNS = ["row", "a", "b", "directed", "count", "value"]


def matrix_table(out: MatrixOut) -> Table:
    """Service pairs (row=service_pair), agency pairs (row=agency_pair), then the number of reports and of
    pairs left out for being small (row=reports, row=hidden_pairs)."""
    rows: list[dict[str, Any]] = [
        {"row": kind, "a": p.a, "b": p.b, "directed": p.directed, "count": p.count}
        for kind, pairs in (("service_pair", out.service_pairs), ("agency_pair", out.agency_pairs)) for p in pairs]
    rows += [{"row": "reports", "value": SUPPRESSED if out.reports_suppressed else out.reports},
             {"row": "hidden_pairs", "value": out.hidden_pairs}]
    return MATRIX_COLUMNS, rows


RECURRING_COLUMNS = ["row", "size", "services", "units", "words", "example_ids", "report_ids", "value"]


def recurring_table(out: RecurringOut) -> Table:
    """One line per group (row=group), then how many reports were compared (row=candidates)."""
    rows: list[dict[str, Any]] = [{"row": "group", **g.model_dump()} for g in out.groups]
    rows.append({"row": "candidates", "value": out.candidates})
    return RECURRING_COLUMNS, rows


SUMMARY_COLUMNS = ["id", "source_system", "external_id", "title", "reported_category", "category", "category_mapped",
                   "occurred_at", "reported_at", "department", "agency", "unit", "unit_code", "unit_as_sent", "status",
                   "severity", "target_groups", "services_involved", "confirmed_category",
                   "confirmed_category_provenance", "suggested_category", "suggested_category_provenance", "flagged",
                   "score", "labels"]
SIMILAR_COLUMNS = ["row", "similarity", *SUMMARY_COLUMNS, "value"]


def summary_line(report: ReportSummary) -> dict[str, Any]:
    """A report as a list shows it, flat; labels read dimension:code:provenance."""
    line = report.model_dump(mode="json", exclude={"reporting_unit", "labels"})
    unit = report.reporting_unit
    line.update(department=unit.department, agency=unit.agency, unit=unit.unit, unit_code=unit.unit_code,
                unit_as_sent=unit.as_sent,
                labels=[f"{lab.dimension}:{lab.code}:{lab.provenance.value}" for lab in report.labels])
    return line


def similar_table(out: SimilarOut) -> Table:
    """The similar reports, best first (row=report), then the report they resemble (row=report_id) and how
    many reports were compared (row=candidates)."""
    rows: list[dict[str, Any]] = [{"row": "report", "similarity": item.similarity, **summary_line(item.report)}
                                  for item in out.items]
    rows += [{"row": "report_id", "value": out.report_id}, {"row": "candidates", "value": out.candidates}]
    return SIMILAR_COLUMNS, rows


ESTIMATE_COLUMNS = ["row", "stratum", "unreviewed_reports", "reviewed", "confirmed_in_review", "value"]
ESTIMATE_FIGURES = ("confirmed", "estimated_unconfirmed", "estimated_total", "interval_95_low", "interval_95_high",
                    "model_version", "method")


def estimate_table(out: EstimateOut) -> Table:
    """One line per score band (row=stratum), then each figure of the estimate (row=confirmed, …, method)."""
    rows: list[dict[str, Any]] = [
        {"row": "stratum", "stratum": s.name, **{name: SUPPRESSED if s.suppressed and value is None else value
                                                  for name, value in (("unreviewed_reports", s.unreviewed_reports),
                                                                      ("reviewed", s.reviewed),
                                                                      ("confirmed_in_review", s.confirmed_in_review))}}
        for s in out.strata]
    low, high = out.interval_95 or (None, None)
    figures = {"confirmed": out.confirmed, "estimated_unconfirmed": out.estimated_unconfirmed,
               "estimated_total": out.estimated_total, "interval_95_low": low, "interval_95_high": high,
               "model_version": out.model_version, "method": out.method}
    hidden = {"confirmed", "estimated_unconfirmed", "estimated_total", "interval_95_low", "interval_95_high"}
    rows += [{"row": name, "value": SUPPRESSED if out.suppressed and name in hidden and figures[name] is None
              else figures[name]} for name in ESTIMATE_FIGURES]
    return ESTIMATE_COLUMNS, rows
