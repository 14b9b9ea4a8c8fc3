"""Effective labels: which category, target groups and services count for a report, and on whose word.

The order is adviser > reporter > classifier. A classifier suggestion never hides what a person said:
it only fills in what nobody said (target groups, services), or proposes `samhandling_barn_unge` for a
report its reporter filed elsewhere. Lists and statistics choose whether to count suggestions.

What an adviser's decision means is decided here, once: `is_case` (and `is_case_clause`, the same rule in
SQL) is used by the effective labels, the live quality of the model and the estimate alike.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, SQLColumnExpression, and_, delete, insert, or_, select, update
from sqlalchemy.orm import Session

from app.report.models import Report, ReportLabel, ReportScore, ReportService, ReportTargetGroup
from app.report.provenance import Provenance
from app.review.models import Decision, Review

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
    """What an adviser decided (the latest review). `answers_suggestion`: the report was flagged or drawn for
    the audit sample when it was decided, so the adviser was answering the classifier's suggestion."""

    decision: Decision
    category_code: str | None = None
    target_groups: tuple[str, ...] | None = None
    services: tuple[str, ...] | None = None
    answers_suggestion: bool = True


def is_case(decision: Decision, category_code: str | None) -> bool:
    """Whether a decision makes its report a case of samhandling_barn_unge: `is_case`, or `correct` without a
    category or with samhandling_barn_unge; never `not_case` or a correction to another category."""
    return decision == Decision.IS_CASE or (decision == Decision.CORRECT
                                            and category_code in (None, TARGET_CATEGORY))


def is_case_clause(decision: SQLColumnExpression[str | None], category_code: SQLColumnExpression[str | None]
                   ) -> ColumnElement[bool]:
    """`is_case` as an SQL condition on a decision column and its category column."""
    return or_(decision == Decision.IS_CASE.value,
               and_(decision == Decision.CORRECT.value,
                    or_(category_code.is_(None), category_code == TARGET_CATEGORY)))


def decided_category(verdict: Verdict, reporter_category: str | None) -> str | None:
    """The category a decision gives its report."""
    if is_case(verdict.decision, verdict.category_code):
        return TARGET_CATEGORY
    if verdict.decision == Decision.CORRECT:
        return verdict.category_code
    # Not a case: the reporter's category stands, unless the reporter chose the category just refused.
    return TARGET_PARENT if reporter_category == TARGET_CATEGORY else reporter_category


def adopts_suggestion(verdict: Verdict) -> bool:
    """Whether a decision takes the classifier's target groups and services where neither the adviser nor the
    reporter named any: only when it makes a case of a report the adviser saw as a flag or an audit-sample
    draw. A report reached otherwise (never flagged, not drawn) keeps the reporter's codes only, so a decision
    on it never makes the classifier's guesses official without the adviser sending them."""
    return verdict.answers_suggestion and is_case(verdict.decision, verdict.category_code)


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
    if verdict is None:
        return _without_verdict(reporter_category, reporter_codes, suggestion, suggested_codes)
    labels: dict[tuple[str, str], Provenance] = {}
    category = decided_category(verdict, reporter_category)
    chosen = {"target_group": verdict.target_groups, "service": verdict.services}
    for dimension in DIMENSIONS:
        codes = chosen[dimension]
        if codes is None:
            # What the adviser left out: the reporter's codes, else the suggestion if the decision adopts it.
            codes = tuple(reporter_codes[dimension]) or (
                suggested_codes[dimension] if adopts_suggestion(verdict) else ())
        labels.update({(dimension, code): Provenance.ADVISER for code in codes})
    return Effective(category, Provenance.ADVISER, category, Provenance.ADVISER, labels)


def _without_verdict(
    reporter_category: str | None, reporter_codes: dict[str, frozenset[str]], suggestion: Suggestion | None,
    suggested_codes: dict[str, tuple[str, ...]],
) -> Effective:
    # Nobody has decided: reporter > classifier, and a flag only proposes the category.
    labels: dict[tuple[str, str], Provenance] = {}
    confirmed = reporter_category
    confirmed_provenance = Provenance.REPORTER if reporter_category else None
    suggested: str | None
    suggested_provenance: Provenance | None
    if suggestion is not None and suggestion.flagged and reporter_category != TARGET_CATEGORY:
        suggested, suggested_provenance = TARGET_CATEGORY, Provenance.CLASSIFIER
    else:
        suggested, suggested_provenance = confirmed, confirmed_provenance
    for dimension in DIMENSIONS:
        codes, provenance = ((reporter_codes[dimension], Provenance.REPORTER) if reporter_codes[dimension]
                             else (suggested_codes[dimension], Provenance.CLASSIFIER))
        for code in codes:
            labels[(dimension, code)] = provenance
    return Effective(confirmed, confirmed_provenance, suggested, suggested_provenance, labels)


def category_columns(result: Effective) -> dict[str, str | None]:
    """The report columns that hold the effective category and its provenance."""
    return {"confirmed_category_code": result.confirmed_category,
            "confirmed_category_provenance": _text(result.confirmed_provenance),
            "suggested_category_code": result.suggested_category,
            "suggested_category_provenance": _text(result.suggested_provenance)}


def label_rows(report_id: int, result: Effective) -> list[tuple[int, str, str, str]]:
    """(report_id, dimension, code, provenance) rows of report_label, ordered as lists show them."""
    return [(report_id, dimension, code, provenance.value)
            for (dimension, code), provenance in sorted(result.labels.items())]


def _text(provenance: Provenance | None) -> str | None:
    return provenance.value if provenance is not None else None


def latest_verdicts(session: Session, report_ids: Sequence[int]) -> dict[int, Verdict]:
    """The latest adviser decision of each of these reports that has one."""
    verdicts: dict[int, Verdict] = {}
    if not report_ids:
        return verdicts
    for row in session.execute(
        select(Review.report_id, Review.decision, Review.category_code, Review.target_groups, Review.services,
               Review.flagged, Review.audit_sample)
        .where(Review.report_id.in_(report_ids)).order_by(Review.id)
    ):
        verdicts[row.report_id] = Verdict(
            Decision(row.decision), row.category_code,
            tuple(row.target_groups) if row.target_groups is not None else None,
            tuple(row.services) if row.services is not None else None,
            answers_suggestion=bool(row.flagged or row.audit_sample),
        )
    return verdicts


def stored_suggestions(session: Session, report_ids: Sequence[int]) -> dict[int, Suggestion]:
    """The classifier's stored suggestion for each of these reports that has been scored."""
    if not report_ids:
        return {}
    return {
        row.report_id: Suggestion(row.flagged, tuple(row.target_groups), tuple(row.services))
        for row in session.execute(select(ReportScore.report_id, ReportScore.flagged, ReportScore.target_groups,
                                          ReportScore.services).where(ReportScore.report_id.in_(report_ids)))
    }


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
    suggestions = stored_suggestions(session, ids)
    verdicts = latest_verdicts(session, ids)
    rows, labels = [], []
    for report_id in ids:
        codes = {d: frozenset(reporter[report_id][d]) for d in DIMENSIONS}
        result = effective_labels(categories.get(report_id), codes, suggestions.get(report_id),
                                  verdicts.get(report_id))
        rows.append({"id": report_id, **category_columns(result)})
        labels += [{"report_id": r, "dimension": d, "code": c, "provenance": p}
                   for r, d, c, p in label_rows(report_id, result)]
    session.execute(update(Report), rows)
    session.execute(delete(ReportLabel).where(ReportLabel.report_id.in_(ids)))
    if labels:
        session.execute(insert(ReportLabel), labels)
