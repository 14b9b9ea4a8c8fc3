"""Idempotent, race-safe upsert of delivered reports: one code path for single and batch delivery.

What each delivery does is planned in app.ingest.plan (pure), against the stored rows app.ingest.locking
reads and locks; app.ingest.writes writes each report row once, its score and effective labels computed
here before the insert. Answers carry the outcome, the id and the versions, never stored text: any case
number can be delivered by any integration key.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from collections.abc import Sequence
from zoneinfo import ZoneInfo

from pydantic import TypeAdapter, ValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app.db import utcnow
from app.errors import Conflict, InvalidInput, echo, validation_fields
from app.ingest import locking, writes
from app.ingest.bulk import BulkWriter
from app.ingest.plan import Delivery, ItemOutcome, Key, ReportState, plan, unreadable
from app.ingest.schemas import BatchItemResult, IngestedReport, ItemError, Outcome, ReportIn
from app.registry.scoring import Scorer, report_text
from app.review import labels
from app.taxonomy.service import load_taxonomy

__all__ = ["Delivery", "ItemOutcome", "batch_results", "parse_items", "upsert_report", "upsert_reports"]
_REPORT_ADAPTER = TypeAdapter(ReportIn)
# PostgreSQL: deadlock, serialisation failure. What is left after the retries is answered 503 with that reason.
_RETRYABLE = frozenset({"40P01", "40001"})
_ATTEMPTS = 5


def parse_items(raw_items: Sequence[object]) -> list[Delivery]:
    """Validate each raw item on its own; a bad item becomes a Delivery with errors, not an exception."""
    deliveries = []
    for index, raw in enumerate(raw_items):
        external_id = raw.get("external_id") if isinstance(raw, dict) else None
        # Echoed in the answer: identifiers removed, a lone surrogate (which JSON cannot carry back) replaced.
        external_id = echo(external_id) if isinstance(external_id, str) else None
        try:
            deliveries.append(Delivery(index, _REPORT_ADAPTER.validate_python(raw), external_id=external_id))
        except ValidationError as exc:
            deliveries.append(Delivery(index, None, validation_fields(exc.errors()), external_id))
        except Exception as exc:  # whatever is wrong with one item, the others are applied
            deliveries.append(Delivery(index, None, [unreadable(index, exc)], external_id))
    return deliveries


def upsert_report(
    session: Session, item: ReportIn, local: ZoneInfo, scorer: Scorer | None = None
) -> IngestedReport:
    """Apply one delivery and answer with what it did (never the stored text); 422 for unknown or retired
    codes, 409 for a same-version content change or a version of the other kind."""
    (result,) = upsert_reports(session, [Delivery(0, item, external_id=item.external_id)], local, scorer)
    if result.outcome is Outcome.INVALID:
        raise InvalidInput("; ".join(f"{e.field}: {e.reason}" for e in result.errors), result.errors)
    if result.outcome is Outcome.CONFLICT:
        raise Conflict(result.errors[0].reason, result.errors)
    assert result.report_id is not None and result.source_version and result.stored_version
    return IngestedReport(outcome=result.outcome, id=result.report_id, source_system=item.source_system,
                          external_id=item.external_id, source_version=result.source_version,
                          stored_version=result.stored_version)


def upsert_reports(
    session: Session, deliveries: Sequence[Delivery], local: ZoneInfo, scorer: Scorer | None = None
) -> list[ItemOutcome]:
    """Apply deliveries in order, in few round trips; one item's failure leaves the others alone.

    New and changed reports are scored by `scorer` (if given) in the same transaction, and their
    effective labels are computed before they are written, so each row is written once.
    """
    if session.get_bind().dialect.name != "postgresql":
        # SQLite: the transaction holds the write lock from its start, so nothing can deadlock it.
        return _upsert_reports(session, deliveries, local, scorer)
    # Rows are locked and created in key order, but stored rows are locked before new ones are inserted,
    # and two transactions may disagree on which keys exist (one was created meanwhile), so overlapping
    # concurrent batches can still deadlock. The request's transaction is the unit of work, so the retry
    # is a savepoint inside it: rolled back, its locks are released and the whole upsert runs again,
    # alone (_UPSERT_LOCK), against what the other transactions committed.
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            with session.begin_nested():
                locking.take_upsert_lock(session, shared=attempt == 1)
                outcomes = _upsert_reports(session, deliveries, local, scorer)
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) not in _RETRYABLE or attempt == _ATTEMPTS:
                raise
            time.sleep(random.uniform(0.0, 0.05 * attempt))
            continue
        return outcomes
    raise AssertionError("unreachable")


def _upsert_reports(
    session: Session, deliveries: Sequence[Delivery], local: ZoneInfo, scorer: Scorer | None,
) -> list[ItemOutcome]:
    taxonomy = load_taxonomy(session)
    writer = BulkWriter(session)
    outcomes: list[ItemOutcome] = [ItemOutcome(d.index, Outcome.INVALID, errors=d.errors) for d in deliveries]
    by_key: dict[Key, list[int]] = defaultdict(list)
    for position, delivery in enumerate(deliveries):
        if delivery.item is not None:
            by_key[(delivery.item.source_system, delivery.item.external_id)].append(position)
    if not by_key:
        return outcomes

    stored = locking.lock_stored(session, sorted(by_key), taxonomy)
    plans = {key: plan(key, [deliveries[p] for p in positions], stored.get(key), taxonomy, local)
             for key, positions in by_key.items()}

    new_keys = sorted(k for k, (state, _) in plans.items() if state is not None and state.report_id is None)
    now = utcnow()
    new_states = [_written(plans[k][0]) for k in new_keys]
    _label(session, new_states, scorer, stored_before=False)
    for state in new_states:
        state.created_at = now
    inserted = writes.insert_new(writer, new_states, now)
    lost = [k for k in new_keys if k not in inserted]
    if lost:
        # Another transaction created these between our lock and our insert: plan them again
        # against the row it committed (the insert waited for that commit).
        fresh = locking.lock_stored(session, lost, taxonomy)
        for key in lost:
            plans[key] = plan(key, [deliveries[p] for p in by_key[key]], fresh[key], taxonomy, local)
    for key, report_id in inserted.items():
        _written(plans[key][0]).report_id = report_id

    changed = [state for key, (state, _) in plans.items()
               if state is not None and state.row is not None and key not in inserted]
    _label(session, changed, scorer, stored_before=True)
    writes.update_changed(session, changed, now)
    created = [_written(plans[k][0]) for k in inserted]
    writes.write_children(session, writer, created, changed, replace_scores=scorer is not None)

    for key, (final, results) in plans.items():
        for position, result in zip(by_key[key], results, strict=True):
            result.key = key
            result.report_id = final.report_id if final is not None else None
            result.stored_version = final.source_version if final is not None else None
            outcomes[position] = result
    return outcomes


def _written(state: ReportState | None) -> ReportState:
    assert state is not None and state.row is not None
    return state


def _label(session: Session, states: list[ReportState], scorer: Scorer | None, stored_before: bool) -> None:
    """Score these reports (with scoring on) and compute their effective labels, before they are written.

    Reports stored before this request may carry an adviser's decision, which outranks everything; with
    scoring off they keep the suggestion stored with them.
    """
    if not states:
        return
    if scorer is not None:
        rows = [s.to_write() for s in states]
        texts = [report_text(i, r.title, r.description, r.reported_category, r.reporting_unit_text, r.unit_name)
                 for i, r in enumerate(rows)]
        scores = scorer(session, texts, [r.category_code for r in rows])
        for state, scored in zip(states, scores, strict=True):
            state.scored = scored
    ids = [s.report_id for s in states if s.report_id is not None] if stored_before else []
    verdicts = labels.latest_verdicts(session, ids)
    kept = labels.stored_suggestions(session, ids) if scorer is None else {}
    for state in states:
        suggestion = state.scored.suggestion() if state.scored is not None else kept.get(state.report_id or 0)
        state.effective = labels.effective_labels(
            state.to_write().category_code,
            {"target_group": frozenset(state.target_groups), "service": frozenset(state.services)},
            suggestion, verdicts.get(state.report_id or 0),
        )


def batch_results(deliveries: Sequence[Delivery], outcomes: Sequence[ItemOutcome]) -> list[BatchItemResult]:
    """Shape the outcomes of a batch for the API, in the order sent."""
    # Built without validation: every value comes typed from this module, and a batch has a thousand.
    return [
        BatchItemResult.model_construct(
            index=o.index,
            external_id=o.key[1] if o.key else d.external_id,
            outcome=o.outcome,
            id=o.report_id,
            source_version=o.source_version,
            stored_version=o.stored_version,
            errors=[ItemError.model_construct(field=e.field, reason=e.reason) for e in o.errors],
        )
        for d, o in zip(deliveries, outcomes, strict=True)
    ]
