"""API shapes of statistics."""

from __future__ import annotations

import enum
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from app.report.schemas import ReportFilter, ReportSummary


class StratumOut(BaseModel):
    """One score band of the estimate."""

    name: str
    unreviewed_reports: int | None = Field(description="Null when suppressed for a role that may not see single "
                                                       "cases")
    suppressed: bool = Field(default=False, description="One of this band's counts is hidden")
    reviewed: int | None = Field(description="Latest reviews of the active model's reports of this band (all "
                                             "reports); null when suppressed")
    confirmed_in_review: int | None = Field(description="Of those, how many found a case; null when suppressed")


class EstimateOut(BaseModel):
    """Collaboration deviations about children for a filter: confirmed, and estimated among the rest."""

    confirmed: int | None = Field(description="Filed under samhandling_barn_unge by the reporter or confirmed by "
                                              "an adviser; null when suppressed")
    estimated_unconfirmed: float | None = Field(description="Expected further cases among reports nobody has "
                                                            "decided on; null when suppressed")
    estimated_total: float | None
    interval_95: tuple[int, int] | None = Field(description="95 % interval of the total; null when suppressed")
    suppressed: bool = Field(default=False, description="For a role that may not see single cases: a small count "
                                                        "was hidden, and with it every figure computed from it")
    model_version: str | None
    strata: list[StratumOut]
    method: str = Field(description="How the figure is computed; see the README")


class Dimension(enum.StrEnum):
    """What counts can be grouped by."""

    PERIOD = "period"
    CATEGORY = "category"
    TARGET_GROUP = "target_group"
    SERVICE = "service"
    DEPARTMENT = "department"
    AGENCY = "agency"
    UNIT = "unit"
    STATUS = "status"
    PROVENANCE = "provenance"


class Period(enum.StrEnum):
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


class StatsQuery(ReportFilter):
    """Any filter of the report list, and the answer's format."""

    format: Literal["json", "csv"] = Field(
        default="json", description="csv: the same answer as a CSV table (as is `Accept: text/csv`): UTF-8 with "
                                    "BOM, semicolons, decimal comma, hidden counts read `suppressed`")


class EstimateQuery(StatsQuery):
    """The estimate for any filter of the report list."""


class CountsQuery(StatsQuery):
    """Group by one or two dimensions, under any filter of the report list."""

    by: list[Dimension] = Field(min_length=1, max_length=2, description="One or two different dimensions",
                                json_schema_extra={"uniqueItems": True})
    period: Period = Period.MONTH

    @field_validator("by")
    @classmethod
    def _different(cls, by: list[Dimension]) -> list[Dimension]:
        if len(set(by)) < len(by):
            raise ValueError("the two dimensions must differ (a table of a dimension by itself is its diagonal)")
        return by


class CellOut(BaseModel):
    """A count; for roles that may not see single cases, small counts are null with suppressed=true."""

    value: int | None
    suppressed: bool = False


class CountRow(BaseModel):
    """One cell of the table."""

    key: dict[str, str | None]
    confirmed: CellOut = Field(description="Counting only what reporters and advisers said")
    with_suggestions: CellOut | None = Field(description="Counting the classifier's suggestions too "
                                                         "(only with include_suggested=true)")


class CountsOut(BaseModel):
    """Counts of reports per cell; a report with several target groups or services is in several cells."""

    by: list[Dimension]
    period: Period
    rows: list[CountRow]
    total: CountRow = Field(description="Distinct reports under the filter")
    suppression: str | None = Field(description="How small counts were protected, when they were")


class TrendQuery(StatsQuery):
    """A time series under any filter of the report list."""

    period: Period = Period.MONTH


class TrendPoint(BaseModel):
    """One period: the count, its share of all reports filed in the period, and the changes."""

    period: str
    count: int | None = Field(description="Null when suppressed for a role that may not see single cases")
    suppressed: bool = False
    all_reports: int | None = Field(description="Every report filed in the period (within the caller's departments "
                                                "and the filter's department, agency and unit); null when suppressed")
    share: float | None
    change_from_previous: int | None
    change_from_last_year: int | None = Field(description="Against the same period a year before")


class TrendOut(BaseModel):
    """The series, confirmed only (or with suggestions when include_suggested=true)."""

    period: Period
    include_suggested: bool
    points: list[TrendPoint]


class MatrixQuery(StatsQuery):
    """Who fails to work with whom, among reports under the filter (default: samhandling_barn_unge)."""


class PairCount(BaseModel):
    """Reports naming both services (or agencies). directed: `a` is the reporter's own side and `b` the
    counterpart; otherwise the pair is unordered (sorted) because the reporter's side is not known."""

    a: str
    b: str
    directed: bool
    count: int


class MatrixOut(BaseModel):
    """Who fails to work with whom: pairs of services, and of the agencies that run them (external
    actors such as hospitals, GPs, police and BUP are 'external')."""

    reports: int | None = Field(description="Reports under the filter; null when suppressed")
    reports_suppressed: bool = False
    service_pairs: list[PairCount]
    agency_pairs: list[PairCount]
    hidden_pairs: int = Field(default=0, description="Pairs left out because their count is below the "
                                                      "suppression limit (roles that may not see single cases)")


class SimilarQuery(StatsQuery):
    """Candidates are the most recent reports under the filter."""

    limit: int = Field(default=10, ge=1, le=50)


class SimilarReport(BaseModel):
    """A report like the given one, and how alike (text and shared services, 0–1)."""

    similarity: float
    report: ReportSummary


class SimilarOut(BaseModel):
    """Reports most like a given report, best first (among the most recent candidates under the filter)."""

    report_id: int
    candidates: int
    items: list[SimilarReport]


class RecurringQuery(StatsQuery):
    """Recurring failures among reports under the filter (by default samhandling_barn_unge)."""

    min_size: int = Field(default=3, ge=2, le=100)


class RecurringGroup(BaseModel):
    """Similar reports naming the same services: a failure that keeps happening."""

    size: int
    services: list[str]
    units: list[str]
    words: list[str] = Field(description="Words most of the group uses and other reports do not")
    example_ids: list[int]
    report_ids: list[int]


class RecurringOut(BaseModel):
    """Groups largest first; `candidates` reports were compared (the most recent under the filter)."""

    candidates: int
    groups: list[RecurringGroup]


class QualityCell(BaseModel):
    """Observed quality of flags among reviews, for one department or overall. For dashboards every count
    is perturbed and hidden (null) when small, and the rates are computed from what is shown."""

    department: str | None
    reviewed_flags: int | None
    confirmed_flags: int | None
    precision: float | None
    waiting_for_review: int | None
    reviewed_audit_sample: int | None
    missed_in_audit_sample: int | None
    miss_rate: float | None
    suppressed: bool = Field(default=False, description="A count of this line is hidden (dashboards)")


class ModelQuality(BaseModel):
    """How far the flags can be trusted, from advisers' reviews of the active model's flags."""

    model_version: str | None
    overall: QualityCell
    by_department: list[QualityCell]
