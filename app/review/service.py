"""Adviser reviews, report history and the review queue."""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, exists, func, or_, select, union_all
from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import Request

from app.audit import service as audit
from app.auth.principal import Principal
from app.db import utcnow
from app.errors import FieldError, InvalidInput, PreconditionFailed, echo
from app.observability import metrics
from app.pagination import Cursor
from app.privacy.redaction import redact
from app.report import export as report_export
from app.report import queries
from app.report import service as report_service
from app.report.models import Report, ReportScore
from app.report.schemas import ReportSummary
from app.review import labels
from app.review.models import Decision, Review
from app.review.schemas import (
    QueueItem,
    QueueOrder,
    ReportHistory,
    ReviewIn,
    ReviewOut,
    ReviewQueuePage,
    ReviewQueueQuery,
)
from app.taxonomy.models import CodeKind
from app.taxonomy.service import load_taxonomy


def reviewversion_of(session: Session, report_id: int) -> str:
    """The version of a report's review state (its ETag, unquoted): it changes with every new decision."""
    return version_of(session.scalar(select(func.max(Review.id)).where(Review.report_id == report_id)))


def version_of(latest_review_id: int | None) -> str:
    """The review-state version of a report whose latest review has this id (None or 0: none yet)."""
    return f"review-{latest_review_id or 0}"


def review_etag(session: Session, report_id: int) -> str:
    """`review_version` as an ETag header value (quoted)."""
    return f'"{reviewversion_of(session, report_id)}"'


def parse_if_match(header: str | None) -> list[str] | None:
    """The versions an If-Match header accepts, unquoted; None when it sets no condition (absent or `*`).
    A weak tag (W/"…") never matches: If-Match compares strongly (RFC 9110, 13.1.1)."""
    if header is None or header.strip() == "*":
        return None
    return [tag.strip()[1:-1] for tag in header.split(",")
            if tag.strip().startswith('"') and tag.strip().endswith('"') and len(tag.strip()) >= 2]


def review_report(
    session: Session, report_id: int, decision: ReviewIn, reviewer: str, departments: frozenset[str] | None,
    audit_sample_share: float, if_match: Sequence[str] | None = None,
) -> tuple[bool, Review]:
    """Record a decision (created=True), or return the reviewer's identical latest one (idempotent).

    `if_match`: the review versions (`review_version`) the adviser decided on; when the report's review state
    is no longer one of them, someone decided in the meantime and nothing is written (412). None: no check.
    """
    report = report_service.get_report(session, report_id, departments)
    # One decision at a time per report, so that the version read below is still current when the decision is
    # written (PostgreSQL; SQLite has one writer at a time anyway).
    session.execute(select(Report.id).where(Report.id == report.id).with_for_update())
    category, groups, services = _resolve_codes(session, decision)
    comment = redact(decision.comment).text if decision.comment else None
    latest = session.scalars(select(Review).where(Review.report_id == report.id).order_by(Review.id.desc())).first()
    fields = {"decision": decision.decision.value, "category_code": category,
              "target_groups": sorted(set(groups)) if groups is not None else None,
              "services": sorted(set(services)) if services is not None else None,
              "comment": comment}
    if latest is not None and latest.reviewer == reviewer and all(
        getattr(latest, key) == value for key, value in fields.items()
    ):
        return False, latest
    version = version_of(latest.id if latest else None)
    if if_match is not None and version not in if_match:
        raise _decided_meanwhile(latest, version)
    score = report.score
    review = Review(
        report_id=report.id, reviewer=reviewer, reviewed_at=utcnow(), **fields,
        score=score.score if score else None, flagged=bool(score and score.flagged),
        audit_sample=in_audit_sample(report, audit_sample_share),
        model_version=score.model_version if score else None,
    )
    session.add(review)
    session.flush()
    labels.refresh(session, [report.id])
    return True, review


def record_decision(
    session: Session, request: Request, principal: Principal, report_id: int, decision: ReviewIn,
    audit_sample_share: float, if_match: Sequence[str] | None,
) -> tuple[bool, Review]:
    """An adviser's decision as the API and the pages record it: `review_report`, its audit row, and (when new)
    its count in the metrics once the request succeeds."""
    created, review = review_report(session, report_id, decision, principal.actor, principal.departments,
                                    audit_sample_share, if_match=if_match)
    # A repeated decision changes nothing, but its answer still shows this person the report's review and
    # comment: it is recorded as a read.
    audit.record(session, request, principal, "report.review" if created else "report.review.repeated",
                 report_ids=[report_id], detail=decision.decision.value)
    if created:
        metrics.defer(request.scope, metrics.REVIEWS, decision=decision.decision.value)
    return created, review


def _decided_meanwhile(latest: Review | None, version: str) -> PreconditionFailed:
    # Who and when, as the history shows them to every adviser of the department; never the comment.
    said = (f"another adviser decided in the meantime: {latest.reviewer} said {latest.decision} at "
            f"{latest.reviewed_at.isoformat()}" if latest is not None else "the report has no decision yet")
    return PreconditionFailed(
        f"{said}; read the report again (its ETag is \"{version}\") and decide anew",
        [FieldError(field="If-Match", reason=f"not the report's review state, which is \"{version}\"")],
        headers={"ETag": f'"{version}"'})


def in_audit_sample(report: Report, share: float) -> bool:
    """Whether an unflagged report belongs to the audit sample (reproducible: fixed by its identity)."""
    flagged = bool(report.score and report.score.flagged)
    return not flagged and report.category_code != labels.TARGET_CATEGORY and report.audit_draw < share


def _resolve_codes(session: Session, decision: ReviewIn) -> tuple[str | None, list[str] | None, list[str] | None]:
    """The decision's category, target groups and services as codes (each sent as a code or a label)."""
    taxonomy = load_taxonomy(session)
    errors: list[FieldError] = []
    category = None
    if decision.category is not None:
        category = taxonomy.find_category(decision.category)
        row = taxonomy.codes[CodeKind.CATEGORY].get(category or "")
        if row is None or row.retired_at is not None:
            errors.append(FieldError(field="category", reason=f"not an active category: '{echo(decision.category)}'"))
    groups, services = None, None
    if decision.target_groups is not None:
        groups, problems = taxonomy.resolve_codes(CodeKind.TARGET_GROUP, decision.target_groups, "target_groups")
        errors += problems
    if decision.services is not None:
        services, problems = taxonomy.resolve_codes(CodeKind.SERVICE, decision.services, "services")
        errors += problems
    if errors:
        raise InvalidInput("; ".join(f"{e.field}: {e.reason}" for e in errors), errors)
    return category, groups, services


def review_out(review: Review, superseded: bool) -> ReviewOut:
    """A review as the API shows it."""
    decision = Decision(review.decision)
    unsent = " and ".join(name for name, codes in (("target_groups", review.target_groups),
                                                   ("services", review.services)) if codes is None)
    warnings = []
    if unsent and labels.is_case(decision, review.category_code) and not (review.flagged or review.audit_sample):
        warnings.append(f"a case made of a report neither flagged nor drawn for the audit sample keeps the "
                        f"reporter's {unsent} only: the classifier's suggestion is not adopted; send {unsent} "
                        f"to set them")
    return ReviewOut(
        id=review.id, report_id=review.report_id, decision=decision, category=review.category_code,
        target_groups=review.target_groups, services=review.services, comment=review.comment,
        reviewer=review.reviewer, reviewed_at=review.reviewed_at, score=review.score, flagged=review.flagged,
        audit_sample=review.audit_sample, model_version=review.model_version, superseded=superseded,
        warnings=warnings,
    )


def history(session: Session, report_id: int, departments: frozenset[str] | None) -> ReportHistory:
    """Every review of a report, newest first, and its current classification."""
    report = report_service.get_report(session, report_id, departments)
    reviews = list(session.scalars(select(Review).where(Review.report_id == report.id).order_by(Review.id.desc())))
    return ReportHistory(
        report_id=report.id,
        reviews=[review_out(r, superseded=i > 0) for i, r in enumerate(reviews)],
        classification=report_service.classification(report.score),
    )


def review_queue(
    session: Session, query: ReviewQueueQuery, local: ZoneInfo, departments: frozenset[str] | None,
    audit_sample_share: float, cursor_key: bytes,
) -> ReviewQueuePage:
    """Flagged, unreviewed reports with the audit sample mixed in, by score or by uncertainty; cursors are
    signed with `cursor_key`."""
    resolved = report_service.resolve_filter(load_taxonomy(session), query, local, departments)
    sample = _audit_sample(audit_sample_share)
    # Audit-sample reports get a sort key spread uniformly (by their draw) over the flagged range, so
    # they are mixed through the queue instead of sinking to its end.
    spread = Report.audit_draw / audit_sample_share if audit_sample_share > 0 else Report.audit_draw
    flagged_key: Any
    if query.order is QueueOrder.SCORE:
        flagged_key, sample_key = ReportScore.score, ReportScore.threshold + (1 - ReportScore.threshold) * spread
    else:
        flagged_key = func.abs(ReportScore.score - ReportScore.threshold)
        sample_key = (1 - ReportScore.threshold) * spread
    descending = query.order is QueueOrder.SCORE
    position = Cursor.decode(query.cursor, f"queue:{query.order.value}", cursor_key, float) if query.cursor else None

    def first_rows(rows: Any, key: Any) -> Any:
        """The first limit+1 of one part of the queue in queue order (each part has an index in that order)."""
        part = (select(Report.id.label("id"), key.label("queue_key"))
                .join(ReportScore, ReportScore.report_id == Report.id)
                .where(*queries.filter_clauses(resolved), rows, ~ReportScore.reviewed,
                       ~exists().where(Review.report_id == Report.id)))
        if position is not None:
            # The first clause repeats the second's bound so that the index range starts at the cursor.
            bound, beyond = (key <= position.value, key < position.value) if descending else (
                key >= position.value, key > position.value)
            part = part.where(bound, or_(beyond, and_(key == position.value, Report.id > position.last_id)))
        ordered = key.desc() if descending else key.asc()
        return select(part.order_by(ordered, Report.id.asc()).limit(query.limit + 1).subquery())

    # Flagged reports awaiting a decision and the audit sample are read apart, each from its own index in queue
    # order; the queue's first limit+1 are among the first limit+1 of each.
    merged = union_all(first_rows(ReportScore.flagged, flagged_key), first_rows(sample, sample_key)).subquery()
    key = merged.c.queue_key
    statement = (select(Report, key).join(merged, merged.c.id == Report.id)
                 .order_by(key.desc() if descending else key.asc(), Report.id.asc()).limit(query.limit + 1))
    rows = session.execute(statement).all()
    page, more = rows[:query.limit], len(rows) > query.limit
    next_cursor = None
    if more and page:
        last_report, last_key = page[-1]
        next_cursor = Cursor(f"queue:{query.order.value}", float(last_key), last_report.id).encode(cursor_key)
    return ReviewQueuePage(
        items=[QueueItem(report=report_service.summary(r), audit_sample=in_audit_sample(r, audit_sample_share))
               for r, _ in page],
        next_cursor=next_cursor, limit=query.limit,
    )


def _audit_sample(share: float) -> ColumnElement[bool]:
    """The queue's condition for an unflagged report drawn for the audit sample."""
    return and_(~ReportScore.flagged, Report.audit_draw < share,
                or_(Report.category_code.is_(None), Report.category_code != labels.TARGET_CATEGORY))


def still_waiting(session: Session, report_ids: Sequence[int], departments: frozenset[str] | None,
                  audit_sample_share: float) -> list[int]:
    """Those of these reports, in this order, that are still in the queue of an adviser of `departments`:
    visible to them, flagged or drawn for the audit sample, and decided by nobody yet."""
    if not report_ids:
        return []
    found = set(session.scalars(
        select(Report.id).join(ReportScore, ReportScore.report_id == Report.id)
        .where(Report.id.in_(sorted(set(report_ids))),
               *queries.filter_clauses(queries.ResolvedFilter(visible_departments=departments)),
               or_(ReportScore.flagged, _audit_sample(audit_sample_share)), ~ReportScore.reviewed)))
    return [i for i in report_ids if i in found]


def queue_items(session: Session, report_ids: Sequence[int], departments: frozenset[str] | None,
                audit_sample_share: float) -> list[QueueItem]:
    """These reports, in this order, as the queue lists them (those not visible to `departments` left out)."""
    found = {report.id: report for report in session.scalars(
        select(Report).where(Report.id.in_(sorted(set(report_ids))),
                             *queries.filter_clauses(queries.ResolvedFilter(visible_departments=departments))))}
    return [QueueItem(report=report_service.summary(found[i]), audit_sample=in_audit_sample(found[i],
                                                                                          audit_sample_share))
            for i in report_ids if i in found]


QUEUE_COLUMNS = ["position", "audit_sample", *report_export.COLUMNS]
HISTORY_COLUMNS = list(ReviewOut.model_fields)


def queue_rows(session: Session, maker: sessionmaker[Session], query: ReviewQueueQuery, local: ZoneInfo,
               departments: frozenset[str] | None, audit_sample_share: float) -> Iterator[dict[str, Any]]:
    """The whole queue in queue order as export rows. The filter is checked now, in the request's session
    (a bad one is a 422, not a broken download); the rows are read page by page in a session of their own
    as the body streams, after the request's transaction has ended."""
    report_service.resolve_filter(load_taxonomy(session), query, local, departments)

    def rows() -> Iterator[dict[str, Any]]:
        page_query = query.model_copy(update={"limit": 500, "cursor": None})
        key = secrets.token_bytes(32)  # these cursors never leave this generator
        position = 0
        with maker() as own:
            while True:
                page = review_queue(own, page_query, local, departments, audit_sample_share, key)
                own.commit()  # as the report export: no read transaction held while the page streams
                for item in page.items:
                    position += 1
                    yield {"position": position, "audit_sample": item.audit_sample,
                           **_export_row(item.report, local)}
                if page.next_cursor is None:
                    return
                page_query = page_query.model_copy(update={"cursor": page.next_cursor})

    return rows()


def _export_row(report: ReportSummary, local: ZoneInfo) -> dict[str, Any]:
    """A listed report with the columns (and meanings) of the report list's CSV."""
    unit = report.reporting_unit
    return report_export.row({
        "id": report.id, "source_system": report.source_system, "external_id": report.external_id,
        "reported_at": report.reported_at, "occurred_at": report.occurred_at, "title": report.title,
        "reported_category": report.reported_category, "confirmed_category": report.confirmed_category,
        "confirmed_category_provenance": report.confirmed_category_provenance,
        "suggested_category": report.suggested_category,
        "suggested_category_provenance": report.suggested_category_provenance,
        "flagged": report.flagged, "score": report.score, "department": unit.department, "agency": unit.agency,
        "unit": unit.unit, "status": report.status,
    }, [(label.dimension, label.code, label.provenance) for label in report.labels], local)


def history_rows(result: ReportHistory) -> list[dict[str, Any]]:
    """A report's reviews as export rows, newest first."""
    return [review.model_dump(mode="json") for review in result.reviews]


def queue_backlog(session: Session, audit_sample_share: float) -> tuple[int, int]:
    """How many flagged reports and how many audit-sample reports wait for a first review (every department)."""
    waiting = and_(~exists().where(Review.report_id == Report.id),
                   or_(Report.category_code.is_(None), Report.category_code != labels.TARGET_CATEGORY))
    flagged = session.scalar(select(func.count()).select_from(Report).join(ReportScore, ReportScore.report_id ==
                                                                            Report.id)
                             .where(ReportScore.flagged, waiting))
    sample = session.scalar(select(func.count()).select_from(Report).join(ReportScore, ReportScore.report_id ==
                                                                           Report.id)
                            .where(ReportScore.flagged.is_(False), Report.audit_draw < audit_sample_share, waiting))
    return int(flagged or 0), int(sample or 0)
