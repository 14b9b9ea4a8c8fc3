"""The live quality of the active model, from adviser reviews: precision of its flags and the miss rate in the
audit sample, overall and per department, shown to each caller as app.stats.privacy decides."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import case, exists, func, select
from sqlalchemy.orm import Session

from app.privacy.secret import load_cell_key
from app.registry.service import active_version
from app.report.models import Report, ReportScore
from app.review.labels import is_case_clause
from app.review.models import Review
from app.stats.privacy import EXACT, Shield
from app.stats.schemas import ModelQuality, QualityCell


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
