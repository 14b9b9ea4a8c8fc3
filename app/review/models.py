"""Tables of suggestions (classifier), decisions (advisers) and the effective labels derived from both."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, Float, ForeignKey, Index, Integer, String, Text, false, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow


class Provenance(enum.StrEnum):
    """Who said a label: the reporter (through the quality system), the classifier, or an adviser."""

    REPORTER = "reporter"
    CLASSIFIER = "classifier"
    ADVISER = "adviser"


class Decision(enum.StrEnum):
    """An adviser's answer: the report is a case of samhandling_barn_unge, is not, or its labels are these."""

    # What each one means for the official figures is decided once, by app.review.labels.is_case.

    IS_CASE = "is_case"
    NOT_CASE = "not_case"
    CORRECT = "correct"
    # The names before migration 0010, kept so that code written against them still runs; the API accepts
    # "confirm" and "reject" as aliases (app.review.schemas.ReviewIn).
    CONFIRM = "is_case"
    REJECT = "not_case"


# The rows of the review queue's indexes, as each engine's queries write the condition (SQLite has no booleans).
QUEUE_ROWS = {"postgresql_where": text("flagged AND NOT reviewed"),
              "sqlite_where": text("flagged = 1 AND reviewed = 0")}


class ReportScore(Base):
    """The classifier's latest suggestion for a report."""

    __tablename__ = "report_score"
    __table_args__ = (
        Index("ix_report_score_flagged_score", "flagged", "score"),
        # The review queue in its two orders: flagged rows nobody has decided on yet (migration 0013).
        Index("ix_report_score_queue_score", "score", "report_id", **QUEUE_ROWS),
        Index("ix_report_score_queue_uncertain", text("abs(score - threshold)"), "report_id", **QUEUE_ROWS),
        # The audit sample's candidates awaiting a decision, found from report.audit_draw without their rows.
        Index("ix_report_score_queue_sample", "report_id", postgresql_include=["threshold"],
              postgresql_where=text("NOT flagged AND NOT reviewed"), sqlite_where=text("flagged = 0 AND reviewed = 0")),
    )

    report_id: Mapped[int] = mapped_column(ForeignKey("report.id", ondelete="CASCADE"), primary_key=True)
    model_version: Mapped[str] = mapped_column(String(80), index=True)
    score: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    # Above the threshold and not already filed under the category by its reporter.
    flagged: Mapped[bool] = mapped_column(Boolean)
    target_groups: Mapped[list[str]] = mapped_column(JSON)
    services: Mapped[list[str]] = mapped_column(JSON)
    explanation: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    scored_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Whether any review of the report exists. Kept by database triggers (migration 0013) whatever writes scores
    # or reviews, so that "flagged and awaiting a decision" is an index range; never written by the application.
    reviewed: Mapped[bool] = mapped_column(Boolean, server_default=false())


class Review(Base):
    """One adviser decision; a later one supersedes it, and both stay in the history."""

    __tablename__ = "review"
    __table_args__ = (Index("ix_review_report_id_id", "report_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("report.id", ondelete="CASCADE"))
    decision: Mapped[Decision] = mapped_column(String(20))
    category_code: Mapped[str | None] = mapped_column(String(80))
    target_groups: Mapped[list[str] | None] = mapped_column(JSON)
    services: Mapped[list[str] | None] = mapped_column(JSON)
    comment: Mapped[str | None] = mapped_column(Text)  # redacted like report text
    reviewer: Mapped[str] = mapped_column(String(200))  # key:<name> or user:<oid>@<tenant>
    reviewed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # What the reviewer was shown, so that precision and miss rates can be measured later.
    score: Mapped[float | None] = mapped_column(Float)
    flagged: Mapped[bool] = mapped_column(Boolean)
    audit_sample: Mapped[bool] = mapped_column(Boolean)
    model_version: Mapped[str | None] = mapped_column(String(80))


class ReportLabel(Base):
    """An effective target group or service of a report and where it came from (adviser > reporter >
    classifier); derived from the reporter's codes, the latest score and the latest review."""

    __tablename__ = "report_label"
    __table_args__ = (Index("ix_report_label_dimension_code", "dimension", "code", "provenance", "report_id"),
                      Index("ix_report_label_stats", "dimension", "reported_on", "code", "provenance", "report_id"))

    report_id: Mapped[int] = mapped_column(ForeignKey("report.id", ondelete="CASCADE"), primary_key=True)
    dimension: Mapped[str] = mapped_column(String(20), primary_key=True)  # target_group or service
    code: Mapped[str] = mapped_column(String(80), primary_key=True)
    provenance: Mapped[Provenance] = mapped_column(String(20))
    # The report's reported_on, copied by database triggers (migration 0007) whatever writes the row, so that
    # statistics by period and label read one index range instead of joining every label to its report.
    reported_on: Mapped[date | None] = mapped_column(Date)
