"""Registering and activating classifier versions in the database: the registry's face to other packages.

The artifact bytes are app.registry.artifacts, a process's cached active model app.registry.cache, promotion
app.registry.promotion, scoring with the active model app.registry.scoring; live quality is app.stats.quality.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.db import utcnow
from app.errors import NotFound, echo
from app.registry.artifacts import pack
from app.registry.models import ActiveModel, ModelVersion
from app.registry.schemas import ModelOut
from classifier import TrainedModel


def register(session: Session, model: TrainedModel, source: str, feedback_count: int = 0) -> ModelVersion:
    """Store a trained model as a version (idempotent: the same version is stored once)."""
    existing = session.get(ModelVersion, model.version)
    if existing is not None:
        return existing
    artifact = pack(model)
    row = ModelVersion(version=model.version, created_at=utcnow(), threshold=float(model.threshold),
                       training_data_hash=model.training_data_hash, training_source=source,
                       feedback_count=feedback_count, metrics=_json_safe(model.metrics), artifact=artifact,
                       artifact_sha256=hashlib.sha256(artifact).hexdigest())
    session.add(row)
    session.flush()
    return row


def active_version(session: Session) -> str | None:
    """The version every process should score with."""
    return session.scalar(select(ActiveModel.version).where(ActiveModel.id == 1))


def activate(session: Session, version: str, by: str) -> None:
    """Make a registered version the active one."""
    if session.get(ModelVersion, version) is None:
        raise NotFound(f"no model version {echo(version)}")
    row = session.get(ActiveModel, 1)
    if row is None:
        session.add(ActiveModel(id=1, version=version, promoted_at=utcnow(), promoted_by=by))
    else:
        row.version, row.promoted_at, row.promoted_by = version, utcnow(), by
    session.flush()


def activate_if_none(session: Session, version: str, by: str) -> str:
    """Activate a version unless some version is already active (race-safe); returns the active one."""
    insert_fn = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    session.execute(insert_fn(ActiveModel).values(id=1, version=version, promoted_at=utcnow(), promoted_by=by)
                    .on_conflict_do_nothing(index_elements=["id"]))
    return active_version(session) or version


def list_versions(session: Session) -> list[ModelVersion]:
    """Every registered version, newest first."""
    return list(session.scalars(select(ModelVersion).order_by(ModelVersion.created_at.desc())))


def _json_safe(value: Any) -> Any:
    """Metrics as plain JSON (numpy numbers become floats)."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    return value


def model_out(row: ModelVersion, active: str | None) -> ModelOut:
    """A registered model as the API shows it."""
    return ModelOut(version=row.version, created_at=row.created_at, threshold=row.threshold,
                    training_data_hash=row.training_data_hash, training_source=row.training_source,
                    feedback_count=row.feedback_count, active=row.version == active, metrics=row.metrics)
