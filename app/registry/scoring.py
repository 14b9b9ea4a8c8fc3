"""Scoring reports with the classifier, inside the request that stores them."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.observability import metrics
from app.observability.logs import log_error
from app.registry.cache import ActiveModelCache
from app.report.models import Report, ReportScore
from app.review.labels import TARGET_CATEGORY, Suggestion
from classifier import Prediction, ReportText, TrainedModel

logger = logging.getLogger("avvik")

# The columns of report_score a Scored fills, in the order of Scored.row().
SCORE_COLUMNS = ("report_id", "model_version", "score", "threshold", "flagged", "target_groups", "services",
                 "explanation", "scored_at")


@dataclass(frozen=True, slots=True)
class Scored:
    """The classifier's suggestion for one report, as report_score keeps it."""

    model_version: str
    score: float
    threshold: float
    flagged: bool  # above the threshold and not already filed under the category by its reporter
    target_groups: list[str]
    services: list[str]
    explanation: list[dict[str, Any]]
    scored_at: datetime

    def suggestion(self) -> Suggestion:
        """What effective labels take from it."""
        return Suggestion(self.flagged, tuple(self.target_groups), tuple(self.services))

    def row(self, report_id: int) -> tuple[object, ...]:
        """Its report_score row, values in the order of SCORE_COLUMNS."""
        return (report_id, self.model_version, self.score, self.threshold, self.flagged, self.target_groups,
                self.services, self.explanation, self.scored_at)


# Scores the texts of reports about to be stored, given the category code each maps to; stores nothing.
# None for a report the classifier failed on.
Scorer = Callable[[Session, Sequence[ReportText], Sequence[str | None]], list[Scored | None]]


def active_model(session: Session, cache: ActiveModelCache) -> TrainedModel | None:
    """The database's active model, or None on a database without one (never trains: see app.registry.bootstrap)."""
    model = cache.get(session)
    if model is None and not cache.warned:
        cache.warned = True
        logger.warning("no active model: reports are stored unscored; run `avvik model ensure` (`avvik serve` "
                       "does it before it starts), then `avvik rescore`")
    return model


def ingest_scorer(cache: ActiveModelCache, threshold: float | None) -> Scorer:
    """A Scorer that uses the active model (re-read by the cache) and an optional threshold override; without
    an active model every report is stored unscored, so a delivery never waits for a model to be built."""

    def score(session: Session, texts: Sequence[ReportText], categories: Sequence[str | None]) -> list[Scored | None]:
        model = active_model(session, cache)
        return [None] * len(texts) if model is None else score_texts(model, texts, categories, threshold)

    return score


def score_texts(
    model: TrainedModel, texts: Sequence[ReportText], categories: Sequence[str | None], threshold: float | None = None
) -> list[Scored | None]:
    """Score reports in one vectorised call (no I/O); `categories` are the codes their reporters chose.

    A report the classifier fails on gets None, and the error is logged: it is stored unscored (as with
    scoring off, until `avvik rescore`), because a fault in the classifier must not refuse a report.
    """
    if not texts:
        return []
    started = time.perf_counter()
    try:
        predictions: list[Prediction | None] = list(model.predict(texts, threshold=threshold))
    except Exception as exc:
        log_error(logger, "classifier failed on a batch of %d reports; scoring them one by one", exc, len(texts))
        predictions = [_predict_one(model, text, threshold) for text in texts]
    metrics.SCORING_SECONDS.observe(time.perf_counter() - started)
    failed = sum(p is None for p in predictions)
    metrics.SCORED.inc(len(predictions) - failed)
    if failed:
        metrics.SCORING_FAILURES.inc(failed)
    now = utcnow()
    used_threshold = model.threshold if threshold is None else threshold
    return [
        Scored(model_version=p.model_version, score=float(p.score), threshold=used_threshold,
               # Filed under the category by its reporter: confirmed by the reporter, not flagged.
               flagged=bool(p.flagged) and category != TARGET_CATEGORY,
               target_groups=list(p.target_groups), services=list(p.services),
               explanation=[{"term": e.term, "weight": round(float(e.weight), 4)} for e in p.explanation],
               scored_at=now) if p is not None else None
        for p, category in zip(predictions, categories, strict=True)
    ]


def _predict_one(model: TrainedModel, text: ReportText, threshold: float | None) -> Prediction | None:
    try:
        return model.predict([text], threshold=threshold)[0]
    except Exception as exc:
        # The id only: the text is confidential and stays out of logs (and so is the exception's message).
        log_error(logger, "classifier failed on report %s of the batch; stored without a score", exc, text.id)
        return None


def score_reports(
    session: Session, model: TrainedModel, report_ids: Sequence[int], threshold: float | None = None
) -> int:
    """Score stored reports in one vectorised call and store the suggestions; returns how many were scored
    (fewer than asked if the classifier failed on some)."""
    ids = sorted(set(report_ids))
    if not ids:
        return 0
    rows = session.execute(
        select(Report.id, Report.title, Report.description, Report.reported_category, Report.category_code,
               Report.reporting_unit_text, Report.unit_name).where(Report.id.in_(ids))
    ).all()
    scored = score_texts(model, [report_text(r.id, r.title, r.description, r.reported_category,
                                             r.reporting_unit_text, r.unit_name) for r in rows],
                         [r.category_code for r in rows], threshold)
    values = [dict(zip(SCORE_COLUMNS, s.row(r.id), strict=True)) for r, s in zip(rows, scored, strict=True) if s]
    if values:
        # A report the classifier failed on keeps the score it had: still countable, by an older model.
        session.execute(delete(ReportScore).where(ReportScore.report_id.in_([v["report_id"] for v in values])))
        session.execute(insert(ReportScore), values)
    return len(values)


def report_text(
    report_id: int | str, title: str, description: str, reported_category: str | None, unit_text: str | None,
    unit_name: str | None,
) -> ReportText:
    """What the model reads of a report, as stored (text already redacted)."""
    return ReportText(id=str(report_id), title=title, description=description, reported_category=reported_category,
                      reporting_unit=unit_text or unit_name)
