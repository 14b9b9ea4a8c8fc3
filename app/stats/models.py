"""What exists for statistics: indexes for aggregates of a category over a period (trend, matrix, estimate)
and the estimate's summary of every report.

The indexes are declared here, beside the queries that need them, and created by migration 0007; the tables
they index belong to `app.report` and `app.review`. `estimate_basis` is created by migration 0008 and written
only by database triggers.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import Boolean, Date, Float, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.report.models import Report

STATS_INDEXES = (
    Index("ix_report_confirmed_category_reported_on", Report.confirmed_category_code, Report.reported_on),
    Index("ix_report_suggested_category_reported_on", Report.suggested_category_code, Report.reported_on),
)


class EstimateBasis(Base):
    """One row per report with what the estimate counts: the Oslo reporting date, the confirmed category,
    its score (flag and score; null without a row in report_score), whether a review decided it and what its
    latest review (highest id) said and was shown (null when none).

    Kept by triggers on report, report_score and review (migration 0008), whatever writes them, so that the
    estimate reads one index range of narrow rows instead of joining a period's reports to their scores and
    reviews. Never written by the application."""

    __tablename__ = "estimate_basis"
    __table_args__ = (
        Index("ix_estimate_basis_stats", "reported_on", "confirmed_category_code", "reviewed", "flagged", "score"),
        Index("ix_estimate_basis_review", "review_model_version", "review_flagged", "review_score",
              "review_audit_sample", "review_decision", "review_category_code",
              postgresql_where=text("reviewed"), sqlite_where=text("reviewed")),
    )

    report_id: Mapped[int] = mapped_column(ForeignKey("report.id", ondelete="CASCADE"), primary_key=True)
    reported_on: Mapped[date] = mapped_column(Date)
    confirmed_category_code: Mapped[str | None] = mapped_column(String(80))
    flagged: Mapped[bool | None] = mapped_column(Boolean)
    score: Mapped[float | None] = mapped_column(Float)
    reviewed: Mapped[bool] = mapped_column(Boolean)
    review_model_version: Mapped[str | None] = mapped_column(String(80))
    review_decision: Mapped[str | None] = mapped_column(String(20))
    review_category_code: Mapped[str | None] = mapped_column(String(80))
    review_flagged: Mapped[bool | None] = mapped_column(Boolean)
    review_score: Mapped[float | None] = mapped_column(Float)
    review_audit_sample: Mapped[bool | None] = mapped_column(Boolean)
