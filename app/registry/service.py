"""Registering, activating and loading classifier models through the database."""

from __future__ import annotations

import gc
import hashlib
import io
import tempfile
import threading
import time
import zipfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from sqlalchemy import and_, case, exists, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.db import utcnow
from app.errors import Conflict, NotFound
from app.registry.models import ActiveModel, ModelVersion
from app.registry.schemas import ModelOut, ModelQuality, QualityCell
from app.report.models import Report
from app.review.labels import TARGET_CATEGORY
from app.review.models import Decision, ReportScore, Review
from classifier import TrainedModel, load, save

_cache: dict[str, TrainedModel] = {}
_lock = threading.Lock()


def pack(model: TrainedModel) -> bytes:
    """The model's artifact directory as zip bytes."""
    with tempfile.TemporaryDirectory() as tmp:
        directory = save(model, Path(tmp) / "model")
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for file in sorted(directory.iterdir()):
                if not file.name.startswith("."):  # the artifact's lock file is not part of it
                    archive.write(file, file.name)
        return buffer.getvalue()


def unpack(version: ModelVersion, cache_dir: Path) -> TrainedModel:
    """Load a registered model (checked against its stored hash), once per process."""
    with _lock:
        if version.version in _cache:
            return _cache[version.version]
        if hashlib.sha256(version.artifact).hexdigest() != version.artifact_sha256:
            raise Conflict(f"the stored artifact of {version.version} is damaged")
        target = cache_dir / version.version
        target.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(io.BytesIO(version.artifact)) as archive:
            for name in archive.namelist():
                if "/" in name or name.startswith("."):
                    raise Conflict(f"unexpected file {name!r} in the artifact of {version.version}")
                (target / name).write_bytes(archive.read(name))
        _cache[version.version] = load(target)
        return _cache[version.version]


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
        raise NotFound(f"no model version {version}")
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


class ActiveModelCache:
    """The active model for a server process: re-read from the database at most every `ttl` seconds, so
    a promotion reaches every replica within that time."""

    def __init__(self, cache_dir: Path, ttl: float = 10.0, *, freeze: bool = False) -> None:
        self.cache_dir = cache_dir
        self.ttl = ttl
        self.freeze = freeze
        self._model: TrainedModel | None = None
        self._checked = float("-inf")
        self.warned = False  # that there is no active model, once per process

    def invalidate(self) -> None:
        """Read the active version again on the next call."""
        self._checked = float("-inf")

    def get(self, session: Session) -> TrainedModel | None:
        """The active model (None while the database has none); loads a registered artifact, never trains."""
        now = time.monotonic()
        if self._model is None or now - self._checked > self.ttl:
            version = active_version(session)
            if version is not None and (self._model is None or self._model.version != version):
                row = session.get(ModelVersion, version)
                if row is not None:
                    self._model = unpack(row, self.cache_dir)
                    if self.freeze:
                        # A model lives until the next promotion: keep the collector from walking its
                        # vocabulary on every full collection (see app.main.freeze_long_lived).
                        gc.collect()
                        gc.freeze()
            self._checked = now
        return self._model


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


def quality(session: Session) -> ModelQuality:
    """Observed precision of the active model's flags and miss rate in the audit sample, from the latest
    review of each report, overall and per department."""
    version = active_version(session)
    latest = select(func.max(Review.id).label("id")).group_by(Review.report_id).subquery()
    positive = or_(Review.decision == Decision.CONFIRM.value,
                   and_(Review.decision == Decision.CORRECT.value, Review.category_code == TARGET_CATEGORY))
    reviewed = session.execute(
        select(Report.department_code, Review.flagged, Review.audit_sample,
               func.count(), func.sum(case((positive, 1), else_=0)))
        .join(latest, latest.c.id == Review.id).join(Report, Report.id == Review.report_id)
        .where(Review.model_version == version)
        .group_by(Report.department_code, Review.flagged, Review.audit_sample)
    ).all()
    waiting = session.execute(
        select(Report.department_code, func.count()).join(ReportScore, ReportScore.report_id == Report.id)
        .where(ReportScore.flagged, ReportScore.model_version == version,
               ~exists().where(Review.report_id == Report.id))
        .group_by(Report.department_code)
    ).all()
    cells: dict[str | None, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for department, flagged, sample, n, hits in reviewed:
        for key in (department, "__all__"):
            if flagged:
                cells[key]["reviewed_flags"] += n
                cells[key]["confirmed_flags"] += int(hits or 0)
            elif sample:
                cells[key]["reviewed_audit_sample"] += n
                cells[key]["missed_in_audit_sample"] += int(hits or 0)
    for department, n in waiting:
        cells[department]["waiting_for_review"] += n
        cells["__all__"]["waiting_for_review"] += n

    def cell(key: str | None) -> QualityCell:
        c = cells[key]
        return QualityCell(
            department=None if key == "__all__" else key, reviewed_flags=c["reviewed_flags"],
            confirmed_flags=c["confirmed_flags"],
            precision=c["confirmed_flags"] / c["reviewed_flags"] if c["reviewed_flags"] else None,
            waiting_for_review=c["waiting_for_review"], reviewed_audit_sample=c["reviewed_audit_sample"],
            missed_in_audit_sample=c["missed_in_audit_sample"],
            miss_rate=c["missed_in_audit_sample"] / c["reviewed_audit_sample"] if c["reviewed_audit_sample"] else None,
        )

    departments = sorted((k for k in cells if k != "__all__"), key=lambda k: (k is None, k or ""))
    return ModelQuality(model_version=version, overall=cell("__all__"), by_department=[cell(d) for d in departments])


def promote(session: Session, version: str, by: str, judged_on: list[Any], force: bool) -> dict[str, Any]:
    """Activate a version unless it is worse than the active one on the judging set (F1 of the flag)."""
    from classifier import evaluate

    candidate_row = session.get(ModelVersion, version)
    if candidate_row is None:
        raise NotFound(f"no model version {version}")
    current = active_version(session)
    comparison: dict[str, Any] = {"candidate": version, "active": current, "judged_on": len(judged_on)}
    if current is not None and current != version and judged_on:
        cache = Path(tempfile.gettempdir()) / "avvik-models"
        candidate = evaluate(unpack(candidate_row, cache), judged_on)["samhandling_barn_unge"]
        active_row = session.get(ModelVersion, current)
        assert active_row is not None
        incumbent = evaluate(unpack(active_row, cache), judged_on)["samhandling_barn_unge"]
        comparison |= {"candidate_f1": candidate["f1"], "active_f1": incumbent["f1"],
                       "candidate_roc_auc": candidate.get("roc_auc"), "active_roc_auc": incumbent.get("roc_auc")}
        if (candidate["f1"] or 0.0) < (incumbent["f1"] or 0.0) and not force:
            raise Conflict(f"{version} is worse than the active {current} on {len(judged_on)} held-out reports "
                           f"(F1 {candidate['f1']} < {incumbent['f1']}); use --force to promote anyway")
    activate(session, version, by)
    comparison["promoted"] = True
    return comparison
