"""Tables of stored deviation reports, their multi-valued fields, the classifier's latest suggestion and the
effective labels derived from what the reporter, the classifier and an adviser said (see app.review.labels)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, UTCDateTime, utcnow
from app.report.provenance import Provenance


class Report(Base):
    """One deviation report as last delivered by its source system (one row per source and case number)."""

    __tablename__ = "report"
    __table_args__ = (
        UniqueConstraint("source_system", "external_id"),
        Index("ix_report_reported_at_id", "reported_at", "id"),
        # Counts by reporting date read this index alone, dashboards' record keys (from the id) too (0014).
        Index("ix_report_reported_on", "reported_on", postgresql_include=["id"]),
        Index("ix_report_occurred_sort_id", "occurred_sort_at", "id"),
        # The review queue's audit sample: its candidates and the filter columns it checks, without the rows.
        Index("ix_report_audit_draw", "audit_draw", postgresql_include=["id", "category_code", "department_code"]),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_system: Mapped[str] = mapped_column(String(50))
    external_id: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text)
    reported_category: Mapped[str | None] = mapped_column(String(300))
    # The taxonomy code the reporter's category maps to; None while the label is unmapped.
    category_code: Mapped[str | None] = mapped_column(String(80), index=True)
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The Oslo calendar date of reported_at: periods (month, quarter, year) are local, and bucketing on a
    # stored date is the same on every engine and can use an index.
    reported_on: Mapped[date] = mapped_column(Date)
    # occurred_at, or reported_at when the reporter gave no time: what sorting by occurrence uses.
    occurred_sort_at: Mapped[datetime] = mapped_column(UTCDateTime)
    department_code: Mapped[str | None] = mapped_column(String(80), index=True)
    agency_code: Mapped[str | None] = mapped_column(String(80), index=True)
    unit_name: Mapped[str | None] = mapped_column(String(200), index=True)
    unit_code: Mapped[str | None] = mapped_column(String(80))
    reporting_unit_text: Mapped[str | None] = mapped_column(String(400))
    status: Mapped[str] = mapped_column(String(40), index=True)
    severity: Mapped[str | None] = mapped_column(String(40))
    # The source's version as sent, and as a number that orders versions (epoch microseconds for times).
    source_version: Mapped[str] = mapped_column(String(64))
    source_version_key: Mapped[int] = mapped_column(BigInteger)
    content_hash: Mapped[str] = mapped_column(String(64))
    # How many personal identifiers were removed from title and description on ingest.
    redacted_identity_numbers: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    redacted_phone_numbers: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    redacted_emails: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The effective category, without machine guesses (adviser > reporter) and with them
    # (adviser > reporter's samhandling_barn_unge > classifier flag > reporter); see app.review.labels.
    confirmed_category_code: Mapped[str | None] = mapped_column(String(80), index=True)
    confirmed_category_provenance: Mapped[str | None] = mapped_column(String(20))
    suggested_category_code: Mapped[str | None] = mapped_column(String(80), index=True)
    suggested_category_provenance: Mapped[str | None] = mapped_column(String(20))
    # A uniform draw in [0, 1) fixed when the report is created: the audit sample is every unflagged
    # report with audit_draw below the configured share, so it is random yet reproducible.
    audit_draw: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")

    target_groups: Mapped[list[ReportTargetGroup]] = relationship(
        cascade="all, delete-orphan", order_by="ReportTargetGroup.code", lazy="selectin"
    )
    services: Mapped[list[ReportService]] = relationship(
        cascade="all, delete-orphan", order_by="ReportService.code", lazy="selectin"
    )
    links: Mapped[list[ReportLink]] = relationship(
        cascade="all, delete-orphan", order_by="ReportLink.related_external_id", lazy="selectin"
    )
    labels: Mapped[list[ReportLabel]] = relationship(
        order_by="(ReportLabel.dimension, ReportLabel.code)", lazy="selectin", viewonly=True
    )
    score: Mapped[ReportScore | None] = relationship(lazy="selectin", viewonly=True)


class ReportTargetGroup(Base):
    """A target group the reporter tagged a report with."""

    __tablename__ = "report_target_group"
    __table_args__ = (Index("ix_report_target_group_code_report", "code", "report_id"),)

    report_id: Mapped[int] = mapped_column(ForeignKey("report.id", ondelete="CASCADE"), primary_key=True)
    code: Mapped[str] = mapped_column(String(80), primary_key=True)


class ReportService(Base):
    """A service the reporter named as involved."""

    __tablename__ = "report_service"
    __table_args__ = (Index("ix_report_service_code_report", "code", "report_id"),)

    report_id: Mapped[int] = mapped_column(ForeignKey("report.id", ondelete="CASCADE"), primary_key=True)
    code: Mapped[str] = mapped_column(String(80), primary_key=True)


class ReportLink(Base):
    """Another case of the same source system that the quality system linked to this one."""

    __tablename__ = "report_link"

    report_id: Mapped[int] = mapped_column(ForeignKey("report.id", ondelete="CASCADE"), primary_key=True)
    related_external_id: Mapped[str] = mapped_column(String(100), primary_key=True)


# The rows of the review queue's indexes, as each engine's queries write the condition (SQLite has no booleans).
QUEUE_ROWS: dict[str, Any] = {"postgresql_where": text("flagged AND NOT reviewed"),
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
