"""Adviser decisions as training data, and the held-out share that judges a candidate model."""

from __future__ import annotations

import hashlib
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.report.models import Report, ReportLabel
from app.report.provenance import Provenance
from app.review.labels import TARGET_CATEGORY
from app.review.models import Review
from classifier import LabelledReport, load_corpus
from classifier.records import Labels

HOLDOUT_SHARE = 0.2
CHILD_AND_YOUTH = {"gravide_og_spedbarn", "barn_1_5", "barn_6_12", "ungdom_13_17", "unge_voksne_18_25",
                   "foreldre_og_familie", "barn_som_parorende"}


def held_out(report_id: int) -> bool:
    """Whether a reviewed report is kept out of training to judge candidates (fixed by its id)."""
    digest = hashlib.sha256(f"holdout:{report_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < HOLDOUT_SHARE


def reviewed_reports(session: Session) -> tuple[list[LabelledReport], list[LabelledReport]]:
    """Every report with an adviser decision as a labelled record: (for training, held out)."""
    reviewed = select(Review.report_id).group_by(Review.report_id).subquery()
    reports = session.scalars(select(Report).where(Report.id.in_(select(reviewed.c.report_id)))).all()
    codes: dict[int, dict[str, list[str]]] = {}
    for label in session.scalars(select(ReportLabel).where(ReportLabel.provenance == Provenance.ADVISER,
                                                           ReportLabel.report_id.in_([r.id for r in reports]))):
        codes.setdefault(label.report_id, {"target_group": [], "service": []})[label.dimension].append(label.code)
    train: list[LabelledReport] = []
    hold: list[LabelledReport] = []
    for report in reports:
        groups = tuple(sorted(codes.get(report.id, {}).get("target_group", [])))
        services = tuple(sorted(codes.get(report.id, {}).get("service", [])))
        positive = report.confirmed_category_code == TARGET_CATEGORY
        children = positive or bool(CHILD_AND_YOUTH & set(groups))
        # A rejection says only that the pair does not hold; when the report concerns children,
        # it was the collaboration that was missing. Otherwise the collaboration part is unknown and
        # taken as absent, which errs towards fewer flags.
        labels = Labels(samhandling=positive, barn_unge=children, samhandling_barn_unge=positive,
                        target_groups=groups, services=services)
        record = LabelledReport(id=f"review-{report.id}", title=report.title, description=report.description,
                                reported_category=report.reported_category,
                                reporting_unit=report.reporting_unit_text or report.unit_name, labels=labels,
                                source="review")
        (hold if held_out(report.id) else train).append(record)
    return train, hold


def judging_set(session: Session, dev_set: Path | None) -> list[LabelledReport]:
    """What a candidate is judged on: the development set (when present) plus held-out adviser decisions."""
    records = load_corpus([dev_set]) if dev_set is not None and dev_set.exists() else []
    return [*records, *reviewed_reports(session)[1]]
