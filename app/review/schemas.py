"""API shapes of reviews, history and the review queue."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from app.export import CSV_FORMAT_DESCRIPTION, HEADING_LANGUAGE_DESCRIPTION, HeadingLanguage
from app.fields import Code, NoNul
from app.report.schemas import Classification, ReportFilter, ReportSummary
from app.review.models import Decision

# The ETag of a report's review state, as OpenAPI documents a response header.
ETAG_HEADER = {"ETag": {"description": "The version of the report's review state; send it as If-Match with a "
                                      "decision", "schema": {"type": "string"}}}
# The decision names before is_case/not_case, still accepted.
DECISION_ALIASES = {"confirm": Decision.IS_CASE.value, "reject": Decision.NOT_CASE.value}


def _decision_alias(value: object) -> object:
    return DECISION_ALIASES.get(value, value) if isinstance(value, str) else value


class ReviewIn(NoNul):
    """An adviser's decision on a report: a flag, an audit-sample draw, or any report reached by its id."""

    model_config = ConfigDict(extra="forbid")

    decision: Annotated[Decision, BeforeValidator(_decision_alias), WithJsonSchema({
        "type": "string", "enum": [*(d.value for d in Decision), *DECISION_ALIASES],
        "description": "is_case: a collaboration deviation about children and youth (category "
                       "samhandling_barn_unge); not_case: it is not; correct: the labels are these (a case unless "
                       "`category` names another category). `confirm` and `reject` are the older names of is_case "
                       "and not_case, accepted and stored as those"})]
    category: str | None = Field(default=None, max_length=80, description=(
        "With correct: the right category, as a code or its label; without it a correction is a case"))
    target_groups: list[Code] | None = Field(default=None, max_length=20, description=(
        "The report's target groups, as codes or labels (`Barn 6–12 år`); omitted: the reporter's, else, when "
        "a flagged or audit-sample report is made a case, the classifier's suggestion"))
    services: list[Code] | None = Field(default=None, max_length=40, description=(
        "The services involved, as codes or labels (`Skolehelsetjenesten`); omitted: as target_groups"))
    comment: str | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _correct_says_what(self) -> ReviewIn:
        if self.decision is Decision.CORRECT and self.category is None and self.target_groups is None \
                and self.services is None:
            raise ValueError("correct needs a category, target_groups or services")
        if self.decision is not Decision.CORRECT and self.category is not None:
            raise ValueError("a category is given only with decision=correct")
        return self


class ReviewOut(BaseModel):
    """A stored decision."""

    id: int
    report_id: int
    decision: Decision
    category: str | None
    target_groups: list[str] | None
    services: list[str] | None
    comment: str | None
    reviewer: str
    reviewed_at: datetime
    score: float | None
    flagged: bool
    audit_sample: bool
    model_version: str | None
    superseded: bool = Field(description="A later review replaced this one")
    warnings: list[str] = Field(default=[], description=(
        "What the decision did not do that one might expect: a case made of a report that was neither flagged "
        "nor drawn for the audit sample does not adopt the classifier's suggested target groups or services"))


class ReportHistory(BaseModel):
    """Every review of a report, newest first, and the classifier's current suggestion."""

    report_id: int
    reviews: list[ReviewOut]
    classification: Classification | None


class QueueOrder(enum.StrEnum):
    SCORE = "score"  # highest scores first
    UNCERTAIN = "uncertain"  # nearest the threshold first: the answers that teach the model most


class ReviewQueueQuery(ReportFilter):
    """The queue's filters (as the report list), order and page."""

    order: QueueOrder = QueueOrder.SCORE
    limit: int = Field(default=50, ge=1, le=500)
    cursor: str | None = Field(default=None, max_length=500)
    format: Literal["json", "csv"] = Field(
        default="json", description=f"{CSV_FORMAT_DESCRIPTION}; a CSV holds the whole queue in queue order (limit "
                                    "and cursor are ignored), with the columns of the report list's CSV")
    lang: HeadingLanguage = Field(default="en", description=HEADING_LANGUAGE_DESCRIPTION)


class QueueItem(BaseModel):
    """A report waiting for review; audit_sample marks an unflagged report drawn to measure misses."""

    report: ReportSummary
    audit_sample: bool


class ReviewQueuePage(BaseModel):
    """One page of the queue."""

    items: list[QueueItem]
    next_cursor: str | None
    limit: int
