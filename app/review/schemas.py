"""API shapes of reviews, history and the review queue."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.export import CSV_FORMAT_DESCRIPTION, HEADING_LANGUAGE_DESCRIPTION, HeadingLanguage
from app.fields import NoNul
from app.report.schemas import Classification, ReportFilter, ReportSummary
from app.review.models import Decision


class ReviewIn(NoNul):
    """An adviser's decision on a report's flag (or on an audit-sample report)."""

    model_config = ConfigDict(extra="forbid")

    decision: Decision
    category: str | None = Field(default=None, max_length=80, description="With correct: the right category")
    target_groups: list[str] | None = Field(default=None, max_length=20, description="With correct: the right ones")
    services: list[str] | None = Field(default=None, max_length=40, description="With correct: the right ones")
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
