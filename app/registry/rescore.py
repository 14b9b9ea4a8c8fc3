"""Scoring stored reports again, in batches, resumable: progress is committed with every batch."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.db import begin_session, utcnow
from app.errors import NotFound
from app.registry.artifacts import unpack
from app.registry.models import ModelVersion, RescoreRun
from app.registry.scoring import score_reports
from app.registry.service import active_version
from app.report.models import Report
from app.review import labels


def rescore(
    maker: sessionmaker[Session], version: str | None, since: date | None, local: ZoneInfo, batch: int = 500,
    progress: Callable[[int], object] | None = None, cache_dir: Path | None = None,
) -> RescoreRun:
    """Score every report (reported on or after `since`) with a model; an unfinished run with the same
    model and `since` is resumed. Adviser decisions are never touched: they outrank any score."""
    cache = cache_dir or Path(tempfile.gettempdir()) / "avvik-models"
    with begin_session(maker, writes=True) as session:
        version = version or active_version(session)
        if version is None or session.get(ModelVersion, version) is None:
            raise NotFound(f"no model version {version or '(none active)'}")
        run = session.scalars(select(RescoreRun).where(
            RescoreRun.model_version == version, RescoreRun.finished_at.is_(None),
            RescoreRun.since.is_(None) if since is None else RescoreRun.since == since,
        ).order_by(RescoreRun.id.desc())).first()
        if run is None:
            run = RescoreRun(model_version=version, since=since, last_report_id=0, scored=0, started_at=utcnow())
            session.add(run)
            session.flush()
        run_id = run.id
    start = datetime.combine(since, time(0), tzinfo=local) if since else None
    while True:
        with begin_session(maker, writes=True) as session:
            run = session.get(RescoreRun, run_id)
            assert run is not None
            row = session.get(ModelVersion, version)
            assert row is not None
            model = unpack(row, cache)
            query = select(Report.id).where(Report.id > run.last_report_id).order_by(Report.id).limit(batch)
            if start is not None:
                query = query.where(Report.reported_at >= start)
            ids = list(session.scalars(query))
            if not ids:
                run.finished_at = utcnow()
                session.flush()
                session.expunge(run)
                return run
            scored = score_reports(session, model, ids)  # fewer than ids if the classifier failed on some
            labels.refresh(session, ids)
            run.last_report_id = ids[-1]
            run.scored += scored
        if progress is not None:
            progress(len(ids))
