"""Adviser decisions: what each one said about a report; a later one supersedes it."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow


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
