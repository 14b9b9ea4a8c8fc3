"""Effective labels: which category, target groups and services count for a report, and on whose word.

The order is adviser > reporter > classifier. A classifier suggestion never hides what a person said:
it only fills in what nobody said (target groups, services), or proposes `samhandling_barn_unge` for a
report its reporter filed elsewhere. Lists and statistics choose whether to count suggestions.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from app.report.models import Report, ReportService, ReportTargetGroup
from app.review.models import Decision, Provenance, ReportLabel, ReportScore, Review

TARGET_CATEGORY = "samhandling_barn_unge"
TARGET_PARENT = "kommunikasjon_og_samhandling"
DIMENSIONS = ("target_group", "service")


@dataclass(frozen=True)
class Suggestion:
    """What the classifier said about a report."""

    flagged: bool
    target_groups: tuple[str, ...] = ()
    services: tuple[str, ...] = ()


@dataclass(frozen=True)
class Verdict:
    """What an adviser decided (the latest review)."""

    decision: Decision
    category_code: str | None = None
    target_groups: tuple[str, ...] | None = None
    services: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Effective:
    """A report's labels: the category without and with machine suggestions, and provenance of each code."""

    confirmed_category: str | None
    confirmed_provenance: Provenance | None
    suggested_category: str | None
    suggested_provenance: Provenance | None
    labels: dict[tuple[str, str], Provenance]


def effective_labels(
    reporter_category: str | None,
    reporter_codes: dict[str, frozenset[str]],
    suggestion: Suggestion | None,
    verdict: Verdict | None,
) -> Effective:
    """Combine what the reporter, the classifier and an adviser said (pure)."""
    suggested_codes = {"target_group": suggestion.target_groups if suggestion else (),
                       "service": suggestion.services if suggestion else ()}
    labels: dict[tuple[str, str], Provenance] = {}
    if verdict is not None:
        if verdict.decision is Decision.REJECT:
            category = TARGET_PARENT if reporter_category == TARGET_CATEGORY else reporter_category
        elif verdict.decision is Decision.CORRECT and verdict.category_code:
            category = verdict.category_code
        else:
            category = TARGET_CATEGORY
        chosen = {"target_group": verdict.target_groups, "service": verdict.services}
        for dimension in DIMENSIONS:
            codes = chosen[dimension]
            if codes is None:
                # Unless the adviser said otherwise: a confirmation accepts the suggestion where the
                # reporter said nothing; a rejection keeps only what the reporter said.
                codes = tuple(reporter_codes[dimension]) or (
                    () if verdict.decision is Decision.REJECT else suggested_codes[dimension])
            labels.update({(dimension, code): Provenance.ADVISER for code in codes})
        return Effective(category, Provenance.ADVISER, category, Provenance.ADVISER, labels)

    confirmed = reporter_category
    confirmed_provenance = Provenance.REPORTER if reporter_category else None
    if suggestion is not None and suggestion.flagged and reporter_category != TARGET_CATEGORY:
        suggested, suggested_provenance = TARGET_CATEGORY, Provenance.CLASSIFIER
    else:
        suggested, suggested_provenance = confirmed, confirmed_provenance
    for dimension in DIMENSIONS:
        if reporter_codes[dimension]:
            labels.update({(dimension, code): Provenance.REPORTER for code in reporter_codes[dimension]})
        else:
            labels.update({(dimension, code): Provenance.CLASSIFIER for code in suggested_codes[dimension]})
    return Effective(confirmed, confirmed_provenance, suggested, suggested_provenance, labels)


def refresh(session: Session, report_ids: Iterable[int]) -> None:
    """Recompute the stored effective labels of these reports, in a handful of statements."""
    ids = sorted(set(report_ids))
    if not ids:
        return
    categories = dict(session.execute(select(Report.id, Report.category_code).where(Report.id.in_(ids))).all())
    reporter: dict[int, dict[str, set[str]]] = defaultdict(lambda: {d: set() for d in DIMENSIONS})
    for report_id, code in session.execute(
        select(ReportTargetGroup.report_id, ReportTargetGroup.code).where(ReportTargetGroup.report_id.in_(ids))
    ):
        reporter[report_id]["target_group"].add(code)
    for report_id, code in session.execute(
        select(ReportService.report_id, ReportService.code).where(ReportService.report_id.in_(ids))
    ):
        reporter[report_id]["service"].add(code)
    suggestions = {
        row.report_id: Suggestion(row.flagged, tuple(row.target_groups), tuple(row.services))
        for row in session.scalars(select(ReportScore).where(ReportScore.report_id.in_(ids)))
    }
    verdicts: dict[int, Verdict] = {}
    for review in session.scalars(select(Review).where(Review.report_id.in_(ids)).order_by(Review.id)):
        verdicts[review.report_id] = Verdict(
            Decision(review.decision), review.category_code,
            tuple(review.target_groups) if review.target_groups is not None else None,
            tuple(review.services) if review.services is not None else None,
        )
    rows, labels = [], []
    for report_id in ids:
        codes = {d: frozenset(reporter[report_id][d]) for d in DIMENSIONS}
        result = effective_labels(categories.get(report_id), codes, suggestions.get(report_id),
                                  verdicts.get(report_id))
        rows.append({"id": report_id, "confirmed_category_code": result.confirmed_category,
                     "confirmed_category_provenance": result.confirmed_provenance,
                     "suggested_category_code": result.suggested_category,
                     "suggested_category_provenance": result.suggested_provenance})
        labels += [{"report_id": report_id, "dimension": d, "code": c, "provenance": p}
                   for (d, c), p in sorted(result.labels.items())]
    session.execute(update(Report), rows)
    session.execute(delete(ReportLabel).where(ReportLabel.report_id.in_(ids)))
    if labels:
        session.execute(insert(ReportLabel), labels)


def visible_provenances(include_suggested: bool) -> Sequence[Provenance]:
    """The provenances a list or statistic counts."""
    if include_suggested:
        return (Provenance.ADVISER, Provenance.REPORTER, Provenance.CLASSIFIER)
    return (Provenance.ADVISER, Provenance.REPORTER)
