"""API shapes of stored reports: summaries for lists, details with free text, filters and pages."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.export import HEADING_LANGUAGE_DESCRIPTION, HeadingLanguage
from app.fields import Code, IsoDate, Status
from app.report.provenance import Provenance


class ReportingUnitOut(BaseModel):
    """Where a report was filed, resolved to taxonomy codes where possible."""

    department: str | None
    agency: str | None
    unit: str | None
    unit_code: str | None
    as_sent: str | None = Field(description="The unit text as the quality system sent it, when it sent text")


class LabelOut(BaseModel):
    """An effective target group or service and who said it."""

    dimension: str
    code: str
    provenance: Provenance


class ReportSummary(BaseModel):
    """A report in a list: no free text beyond the title."""

    id: int
    source_system: str
    external_id: str
    title: str
    reported_category: str | None = Field(description="As the reporter chose it")
    category: str | None = Field(description="The taxonomy code it maps to; null when unmapped")
    category_mapped: bool
    occurred_at: datetime | None
    reported_at: datetime
    reporting_unit: ReportingUnitOut
    status: str
    severity: str | None
    target_groups: list[str] = Field(description=(
        "The target groups that count officially (codes): an adviser's, else the reporter's; never the "
        "classifier's suggestions, which are in labels (provenance classifier) and classification"))
    services_involved: list[str] = Field(description="The services that count officially, as target_groups")
    confirmed_category: str | None = Field(description="Adviser's decision, else the reporter's category")
    confirmed_category_provenance: Provenance | None
    suggested_category: str | None = Field(description="As confirmed_category, or the classifier's flag")
    suggested_category_provenance: Provenance | None
    flagged: bool = Field(description=(
        "Flagged by the classifier and waiting for an adviser: false once an adviser has decided "
        "(classification.flagged keeps what the classifier said)"))
    score: float | None
    labels: list[LabelOut] = Field(description="Effective target groups and services (adviser > reporter > "
                                               "classifier) with their provenance")


class Explanation(BaseModel):
    """A word or n-gram that pushed the score up (positive weight) or down."""

    term: str
    weight: float


class Classification(BaseModel):
    """The classifier's latest suggestion."""

    model_version: str
    score: float
    threshold: float
    flagged: bool = Field(description=(
        "Above the threshold and not filed under samhandling_barn_unge by its reporter; a decision does not "
        "change it"))
    target_groups: list[str]
    services: list[str]
    explanation: list[Explanation]
    scored_at: datetime


class Redactions(BaseModel):
    """How many personal identifiers were removed from the free text on ingest."""

    identity_numbers: int
    phone_numbers: int
    emails: int


class ReportDetail(ReportSummary):
    """A whole report, free text included (identity numbers, phone numbers and e-mails removed)."""

    description: str
    redactions: Redactions
    classification: Classification | None
    related_external_ids: list[str]
    source_version: str
    created_at: datetime
    updated_at: datetime


class SortField(enum.StrEnum):
    REPORTED_AT = "reported_at"
    OCCURRED_AT = "occurred_at"


class SortOrder(enum.StrEnum):
    ASC = "asc"
    DESC = "desc"


class ReportFilter(BaseModel):
    """Filters of the report list; they combine with AND, repeated values of one filter with OR."""

    model_config = ConfigDict(extra="forbid")

    category: str | None = Field(default=None, description="A category code or label; a parent includes its "
                                                           "children")
    target_group: list[Code] = Field(default_factory=list, max_length=20, description=(
        "Any of these target groups (codes or labels, e.g. `Barn 6–12 år`)"))
    children_and_youth: bool | None = Field(
        default=None, description="true: any of the seven child/youth groups; false: none of them"
    )
    service: list[Code] = Field(default_factory=list, max_length=40, description=(
        "Any of these services (codes or labels, e.g. `Skolehelsetjenesten`)"))
    department: str | None = Field(default=None, description="A department code or label")
    agency: str | None = Field(default=None, description="An agency code or label")
    unit: str | None = Field(default=None, description="Unit name or code")
    status: list[Status] = Field(default_factory=list, max_length=20)
    reported_from: IsoDate | None = Field(default=None, description="Inclusive, Europe/Oslo date")
    reported_to: IsoDate | None = Field(default=None, description="Inclusive, Europe/Oslo date")
    q: str | None = Field(default=None, max_length=200, description="Every word must occur in title or description")
    include_suggested: bool = Field(
        default=False, description="Count the classifier's unreviewed suggestions too (official figures: false)"
    )
    provenance: Provenance | None = Field(
        default=None, description="Only reports whose category rests on this source (classifier implies "
                                  "include_suggested)")

    @model_validator(mode="after")
    def _dates_in_order(self) -> ReportFilter:
        if self.reported_from and self.reported_to and self.reported_from > self.reported_to:
            raise ValueError("reported_from is after reported_to")
        return self


class ReportPage(BaseModel):
    """One page of reports and the cursor of the next page (null on the last)."""

    items: list[ReportSummary]
    next_cursor: str | None
    limit: int


class ReportListQuery(ReportFilter):
    """The query of the report list: its filters, order and page (or, with format, a whole export)."""

    sort: SortField = SortField.REPORTED_AT
    order: SortOrder = SortOrder.DESC
    limit: int = Field(default=50, ge=1, le=500)
    cursor: str | None = Field(default=None, max_length=500, description="next_cursor of the previous page")
    format: Literal["json", "csv", "xlsx"] = Field(
        default="json", description="csv or xlsx: every matching report, streamed (limit and cursor ignored)")
    include_description: bool = Field(default=False, description="Exports: add the free-text description")
    lang: HeadingLanguage = Field(default="en", description=HEADING_LANGUAGE_DESCRIPTION)
