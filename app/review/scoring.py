"""Scoring reports with the classifier, inside the request that stores them."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.registry import service as registry
from app.registry.service import ActiveModelCache
from app.report.models import Report
from app.review.labels import TARGET_CATEGORY
from app.review.models import ReportScore
from classifier import ReportText, TrainedModel, ensure_default_model

_models: dict[Path, TrainedModel] = {}
_lock = threading.Lock()


def load_model(directory: str | Path) -> TrainedModel:
    """The model in a directory, loaded once per process (built from the corpus if the directory is empty)."""
    path = Path(directory).resolve()
    with _lock:
        if path not in _models:
            _models[path] = ensure_default_model(path)
        return _models[path]


def active_model(session: Session, cache: ActiveModelCache, default_dir: str | Path, by: str) -> TrainedModel:
    """The database's active model; on a database without one, the default model is registered and activated."""
    model = cache.get(session)
    if model is None:
        registry.register(session, load_model(default_dir), source="corpus")
        registry.activate_if_none(session, load_model(default_dir).version, by)
        cache.invalidate()
        model = cache.get(session)
        assert model is not None
    return model


def score_reports(
    session: Session, model: TrainedModel, report_ids: Sequence[int], threshold: float | None = None
) -> int:
    """Score these reports in one vectorised call and store the suggestions; returns how many were scored."""
    ids = sorted(set(report_ids))
    if not ids:
        return 0
    rows = session.execute(
        select(Report.id, Report.title, Report.description, Report.reported_category, Report.category_code,
               Report.reporting_unit_text, Report.unit_name).where(Report.id.in_(ids))
    ).all()
    texts = [ReportText(id=str(r.id), title=r.title, description=r.description,
                        reported_category=r.reported_category, reporting_unit=r.reporting_unit_text or r.unit_name)
             for r in rows]
    predictions = model.predict(texts, threshold=threshold)
    reporter_chose = {r.id for r in rows if r.category_code == TARGET_CATEGORY}
    now = utcnow()
    used_threshold = model.threshold if threshold is None else threshold
    scores = [
        {"report_id": int(p.id), "model_version": p.model_version, "score": float(p.score),
         "threshold": used_threshold,
         # Filed under the category by its reporter: confirmed by the reporter, not flagged.
         "flagged": bool(p.flagged) and int(p.id) not in reporter_chose,
         "target_groups": list(p.target_groups), "services": list(p.services),
         "explanation": [{"term": e.term, "weight": round(float(e.weight), 4)} for e in p.explanation],
         "scored_at": now}
        for p in predictions
    ]
    session.execute(delete(ReportScore).where(ReportScore.report_id.in_(ids)))
    session.execute(insert(ReportScore), scores)
    return len(scores)
