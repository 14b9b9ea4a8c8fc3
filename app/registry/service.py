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

from sqlalchemy import case, exists, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.db import utcnow
from app.errors import Conflict, NotFound, echo
from app.privacy.secret import load_cell_key
from app.registry.models import ActiveModel, ModelVersion
from app.registry.schemas import ModelOut, ModelQuality, QualityCell
from app.report.models import Report, ReportScore
from app.review.labels import is_case_clause
from app.review.models import Review
from app.stats.privacy import EXACT, Shield
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


def quality(session: Session, departments: frozenset[str] | None = None, protect_small: bool = False,
            k: int = 5) -> ModelQuality:
    """Observed precision of the active model's flags and miss rate in the audit sample, from the latest
    review of each report, overall and per department, among the reports of `departments` (None: all).
    When `protect_small`, every count is perturbed as a cell of its own and hidden below k
    (app.stats.privacy), and the rates are computed from what is shown."""
    shield = Shield(load_cell_key(session), k) if protect_small else EXACT
    version = active_version(session)
    scope = [] if departments is None else [Report.department_code.in_(departments)]
    latest = select(func.max(Review.id).label("id")).group_by(Review.report_id).subquery()
    positive = is_case_clause(Review.decision, Review.category_code)
    record_key = shield.record_key(Report.id)
    reviewed = session.execute(
        select(Report.department_code, Review.flagged, Review.audit_sample,
               func.count(), func.sum(case((positive, 1), else_=0)), func.sum(record_key),
               func.sum(case((positive, record_key), else_=0)))
        .join(latest, latest.c.id == Review.id).join(Report, Report.id == Review.report_id)
        .where(Review.model_version == version, *scope)
        .group_by(Report.department_code, Review.flagged, Review.audit_sample)
    ).all()
    waiting = session.execute(
        select(Report.department_code, func.count(), func.sum(record_key))
        .join(ReportScore, ReportScore.report_id == Report.id)
        .where(ReportScore.flagged, ReportScore.model_version == version,
               ~exists().where(Review.report_id == Report.id), *scope)
        .group_by(Report.department_code)
    ).all()
    # Each count with the sum of its reports' record keys (a report is in one department, so the overall
    # sums are the departments' sums).
    cells: dict[str | None, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))

    def add(key: str | None, name: str, n: Any, key_sum: Any) -> None:
        for where in (key, "__all__"):
            cells[where][name][0] += int(n or 0)
            cells[where][name][1] += int(key_sum or 0)

    for department, flagged, sample, n, hits, keys, hit_keys in reviewed:
        if flagged:
            add(department, "reviewed_flags", n, keys)
            add(department, "confirmed_flags", hits, hit_keys)
        elif sample:
            add(department, "reviewed_audit_sample", n, keys)
            add(department, "missed_in_audit_sample", hits, hit_keys)
    for department, n, keys in waiting:
        add(department, "waiting_for_review", n, keys)

    def cell(key: str | None) -> QualityCell:
        shown = {name: shield.cell(*cells[key][name]) for name in QUALITY_COUNTS}

        def rate(part: str, whole: str) -> float | None:
            a, b = shown[part].value, shown[whole].value
            return min(a / b, 1.0) if a is not None and b else None

        return QualityCell(
            department=None if key == "__all__" else key, **{name: c.value for name, c in shown.items()},
            precision=rate("confirmed_flags", "reviewed_flags"),
            miss_rate=rate("missed_in_audit_sample", "reviewed_audit_sample"),
            suppressed=any(c.suppressed for c in shown.values()))

    keys = sorted((k for k in cells if k != "__all__"), key=lambda k: (k is None, k or ""))
    return ModelQuality(model_version=version, overall=cell("__all__"), by_department=[cell(d) for d in keys])


QUALITY_COUNTS = ("reviewed_flags", "confirmed_flags", "waiting_for_review", "reviewed_audit_sample",
                  "missed_in_audit_sample")


def promote(session: Session, version: str, by: str, judged_on: list[Any], force: bool) -> dict[str, Any]:
    """Activate a version unless it is worse than the active one on the judging set (F1 of the flag)."""
    from classifier import evaluate

    candidate_row = session.get(ModelVersion, version)
    if candidate_row is None:
        raise NotFound(f"no model version {echo(version)}")
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
