"""API shapes of the model registry."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


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
