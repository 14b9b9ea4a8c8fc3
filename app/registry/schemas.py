"""API shapes of the model registry and live quality."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class ModelOut(BaseModel):
    """A registered model (without its artifact)."""

    version: str
    created_at: datetime
    threshold: float
    training_data_hash: str
    training_source: str
    feedback_count: int
    active: bool
    metrics: dict[str, Any]


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
