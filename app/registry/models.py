"""Tables of model versions, the active model and re-scoring runs."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, Float, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow


class ModelVersion(Base):
    """A trained model and its artifact (a zip of plain arrays and JSON), so every server process can load it."""

    __tablename__ = "model_version"

    version: Mapped[str] = mapped_column(String(80), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    threshold: Mapped[float] = mapped_column(Float)
    training_data_hash: Mapped[str] = mapped_column(String(80))
    training_source: Mapped[str] = mapped_column(String(40))  # corpus, or corpus+feedback
    feedback_count: Mapped[int] = mapped_column(Integer, default=0)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    artifact: Mapped[bytes] = mapped_column(LargeBinary)
    artifact_sha256: Mapped[str] = mapped_column(String(64))


class ActiveModel(Base):
    """The one model every process scores with (a single row, id 1)."""

    __tablename__ = "active_model"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[str] = mapped_column(ForeignKey("model_version.version"))
    promoted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    promoted_by: Mapped[str] = mapped_column(String(200))


class RescoreRun(Base):
    """Progress of `avvik rescore`, so that an interrupted run resumes where it stopped."""

    __tablename__ = "rescore_run"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_version: Mapped[str] = mapped_column(String(80))
    since: Mapped[date | None] = mapped_column(Date)
    last_report_id: Mapped[int] = mapped_column(Integer, default=0)
    scored: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
