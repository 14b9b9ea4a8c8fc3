"""Idempotent, race-safe upsert of delivered reports: one code path for single and batch delivery.

A delivery is applied when its source_version is newer than the stored one, acknowledged unchanged
when equal with equal content, refused as a conflict when equal with other content, and acknowledged
but not applied (stale) when older; a version of the other kind (a number after a timestamp or the
reverse) is a conflict. Rows are locked in a fixed order and new rows are created with
INSERT … ON CONFLICT DO NOTHING, so concurrent deliveries of one report end as one row.

Each report row is written once: its score and effective labels are computed before the insert, and its
child rows go in through app.ingest.bulk (COPY or one pipeline on PostgreSQL). Answers carry the outcome,
the id and the versions, never stored text: any case number can be delivered by any integration key.
"""

from __future__ import annotations

import logging
import random
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast
from zoneinfo import ZoneInfo

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import String, and_, bindparam, collate, delete, func, select, text, tuple_, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app.db import utcnow
from app.errors import Conflict, FieldError, InvalidInput, echo, validation_fields
from app.ingest.bulk import BulkWriter
from app.ingest.mapping import report_values
from app.ingest.schemas import BatchItemResult, IngestedReport, ItemError, Outcome, ReportIn
from app.registry.scoring import SCORE_COLUMNS, Scored, Scorer, report_text
from app.report.models import Report, ReportLabel, ReportLink, ReportScore, ReportService, ReportTargetGroup
from app.review import labels
from app.taxonomy.models import CodeKind
from app.taxonomy.service import Taxonomy, load_taxonomy

logger = logging.getLogger("avvik")
Key = tuple[str, str]
_REPORT_ADAPTER = TypeAdapter(ReportIn)
_LOCK_CHUNK = 500  # keys per lock query where keys are bound one by one (SQLite allows 32,766 parameters)
# PostgreSQL: deadlock, serialisation failure. What is left after the retries is answered 503 with that reason.
_RETRYABLE = frozenset({"40P01", "40001"})
_ATTEMPTS = 5
# A transaction-level advisory lock every PostgreSQL upsert holds: shared on a first attempt (upserts run
# side by side), exclusive on a retry (it waits for the upserts under way, then runs alone, so it cannot
# deadlock with another upsert again). Rolling back to the savepoint releases it with the rest.
_UPSERT_LOCK_KEY = 0x6176_7669_6B00  # "avvik"
_UPSERT_LOCK = {True: text("SELECT pg_advisory_xact_lock_shared(:key)"),
                False: text("SELECT pg_advisory_xact_lock(:key)")}
_REPORTS = Report.__table__
_CHILDREN = (
    (ReportTargetGroup.__table__, ("report_id", "code")),
    (ReportService.__table__, ("report_id", "code")),
    (ReportLink.__table__, ("report_id", "related_external_id")),
    # The label's copy of the reporting date is written here (the database would look it up per label).
    (ReportLabel.__table__, ("report_id", "dimension", "code", "provenance", "reported_on")),
)


@dataclass
class Delivery:
    """One item as delivered: parsed, or the reasons it could not be."""

    index: int
    item: ReportIn | None
    errors: list[FieldError] = field(default_factory=list)
    external_id: str | None = None


@dataclass
class ItemOutcome:
    """What one delivery did, and the id of the stored report it concerns."""

    index: int
    outcome: Outcome
    key: Key | None = None
    errors: list[FieldError] = field(default_factory=list)
    report_id: int | None = None
    source_version: str | None = None  # as this delivery carried it (timestamps in UTC)
    stored_version: str | None = None  # as stored after the request


@dataclass
class _State:
    """A report's state while a batch is planned: as stored, then as the batch leaves it."""

    report_id: int | None
    version_key: int
    content_hash: str
    target_groups: set[str]
    services: set[str]
    values: dict[str, object] | None = None  # the report row to write; None while nothing is to be written
    links: list[str] = field(default_factory=list)
    created_at: datetime | None = None
    scored: Scored | None = None  # this delivery's score (None with scoring off)
    effective: labels.Effective | None = None
    source_version: str = ""  # the version as stored (what the answers show)


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
            deliveries.append(Delivery(index, None, [_unreadable(index, exc)], external_id))
    return deliveries


def _unreadable(index: int, exc: Exception) -> FieldError:
    """An item that failed in a way validation did not foresee: invalid, logged by type (never its text)."""
    logger.warning("ingest item %d could not be read: %s", index, type(exc).__name__)
    return FieldError(field="item", reason="could not be read; nothing of it was stored")


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
                session.execute(_UPSERT_LOCK[attempt == 1], {"key": _UPSERT_LOCK_KEY})
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

    stored = _lock(session, sorted(by_key), taxonomy)
    plans = {key: _plan(key, [deliveries[p] for p in positions], stored.get(key), taxonomy, local)
             for key, positions in by_key.items()}

    new_keys = sorted(k for k, (state, _) in plans.items() if state is not None and state.report_id is None)
    now = utcnow()
    new_states = [_written(plans[k][0]) for k in new_keys]
    _label(session, new_states, scorer, stored_before=False)
    for state in new_states:
        state.created_at = now
        assert state.values is not None
        state.values.update(created_at=now, updated_at=now)
    inserted = _insert(writer, new_states)
    lost = [k for k in new_keys if k not in inserted]
    if lost:
        # Another transaction created these between our lock and our insert: plan them again
        # against the row it committed (the insert waited for that commit).
        fresh = _lock(session, lost, taxonomy)
        for key in lost:
            plans[key] = _plan(key, [deliveries[p] for p in by_key[key]], fresh[key], taxonomy, local)
    for key, report_id in inserted.items():
        _written(plans[key][0]).report_id = report_id

    changed = [state for key, (state, _) in plans.items()
               if state is not None and state.values is not None and key not in inserted]
    _label(session, changed, scorer, stored_before=True)
    for state in changed:
        assert state.values is not None
        state.values["updated_at"] = now
    _update(session, changed)
    created = [_written(plans[k][0]) for k in inserted]
    _write_children(session, writer, created, changed, replace_scores=scorer is not None)

    for key, (state, results) in plans.items():
        for position, result in zip(by_key[key], results, strict=True):
            result.key = key
            result.report_id = state.report_id if state is not None else None
            result.stored_version = state.source_version if state is not None else None
            outcomes[position] = result
    return outcomes


def _written(state: _State | None) -> _State:
    assert state is not None and state.values is not None
    return state


def _label(session: Session, states: list[_State], scorer: Scorer | None, stored_before: bool) -> None:
    """Score these reports (with scoring on) and compute their effective labels, before they are written.

    Reports stored before this request may carry an adviser's decision, which outranks everything; with
    scoring off they keep the suggestion stored with them.
    """
    if not states:
        return
    if scorer is not None:
        rows = [_written(s).values or {} for s in states]
        texts = [report_text(i, cast(str, v["title"]), cast(str, v["description"]),
                             cast(str | None, v["reported_category"]), cast(str | None, v["reporting_unit_text"]),
                             cast(str | None, v["unit_name"])) for i, v in enumerate(rows)]
        scores = scorer(session, texts, [cast(str | None, v["category_code"]) for v in rows])
        for state, scored in zip(states, scores, strict=True):
            state.scored = scored
    ids = [s.report_id for s in states if s.report_id is not None] if stored_before else []
    verdicts = labels.latest_verdicts(session, ids)
    kept = labels.stored_suggestions(session, ids) if scorer is None else {}
    for state in states:
        assert state.values is not None
        suggestion = state.scored.suggestion() if state.scored is not None else kept.get(state.report_id or 0)
        state.effective = labels.effective_labels(
            state.values["category_code"],  # type: ignore[arg-type]
            {"target_group": frozenset(state.target_groups), "service": frozenset(state.services)},
            suggestion, verdicts.get(state.report_id or 0),
        )
        state.values.update(labels.category_columns(state.effective))


def _plan(
    key: Key, deliveries: list[Delivery], stored: _State | None, taxonomy: Taxonomy, local: ZoneInfo
) -> tuple[_State | None, list[ItemOutcome]]:
    """Decide, in delivery order, what each delivery of one report does; no I/O."""
    state = stored
    results = []
    for delivery in deliveries:
        item = delivery.item
        assert item is not None
        present_groups = state.target_groups if state else set()
        present_services = state.services if state else set()
        try:
            groups, errors = taxonomy.resolve_codes(CodeKind.TARGET_GROUP, item.target_groups, "target_groups",
                                                    present_groups)
            services, service_errors = taxonomy.resolve_codes(CodeKind.SERVICE, item.services_involved,
                                                              "services_involved", present_services)
            errors += service_errors
            if not errors:
                # Labels become codes before anything is stored or hashed: a label and its code are one delivery.
                item = item.model_copy(update={"target_groups": groups, "services_involved": services})
                values = report_values(taxonomy, item, local)
        except Exception as exc:  # one item's unforeseen failure must not sink the others
            errors = [_unreadable(delivery.index, exc)]
        if errors:
            results.append(ItemOutcome(delivery.index, Outcome.INVALID, errors=errors))
            continue
        version_key = int(values["source_version_key"])  # type: ignore[call-overload]
        version = str(values["source_version"])
        if state is not None and _version_kind(version) != _version_kind(state.source_version):
            results.append(ItemOutcome(delivery.index, Outcome.CONFLICT, source_version=version, errors=[FieldError(
                field="source_version",
                reason=f"this version is a {_version_kind(version)} but the stored version "
                       f"{state.source_version} is a {_version_kind(state.source_version)}; a report's versions "
                       "must all be numbers or all timestamps",
            )]))
            continue
        if state is None or version_key > state.version_key:
            outcome = Outcome.CREATED if state is None else Outcome.UPDATED
            state = _State(
                report_id=state.report_id if state else None,
                version_key=version_key,
                content_hash=str(values["content_hash"]),
                target_groups=set(item.target_groups),
                services=set(item.services_involved),
                values=values,
                links=sorted(set(item.related_external_ids)),
                created_at=state.created_at if state else None,
                source_version=version,
            )
            results.append(ItemOutcome(delivery.index, outcome, source_version=version))
        elif version_key == state.version_key:
            if values["content_hash"] == state.content_hash:
                results.append(ItemOutcome(delivery.index, Outcome.UNCHANGED, source_version=version))
            else:
                results.append(ItemOutcome(delivery.index, Outcome.CONFLICT, source_version=version, errors=[FieldError(
                    field="source_version",
                    reason=f"version {values['source_version']} of {key[0]}/{key[1]} is stored with other "
                           "content; send the change with a higher source_version",
                )]))
        else:
            results.append(ItemOutcome(delivery.index, Outcome.STALE, source_version=version))
    return state, results


def _version_kind(version: str) -> str:
    """'number' or 'timestamp': numbers are stored as digits, timestamps in ISO form."""
    return "number" if version.isdigit() else "timestamp"


# Two arrays bound as two parameters: one statement, planned once, for any number of keys.
_LOCK_COLUMNS = (Report.id, Report.source_system, Report.external_id, Report.source_version_key,
                 Report.content_hash, Report.created_at, Report.source_version)
_WANTED = select(
    func.unnest(bindparam("systems", type_=postgresql.ARRAY(String))).label("source_system"),
    func.unnest(bindparam("external_ids", type_=postgresql.ARRAY(String))).label("external_id"),
).subquery()
_LOCK_PG = (select(*_LOCK_COLUMNS)
            .join(_WANTED, and_(Report.source_system == _WANTED.c.source_system,
                                Report.external_id == _WANTED.c.external_id))
            .order_by(collate(Report.source_system, "C"), collate(Report.external_id, "C"))
            .with_for_update(of=Report))
# SQLite takes its write lock when the transaction begins (BEGIN IMMEDIATE): a plain read suffices.
_LOCK_OTHER = select(*_LOCK_COLUMNS).where(
    tuple_(Report.source_system, Report.external_id).in_(bindparam("keys", expanding=True)))


def _lock(session: Session, keys: list[Key], taxonomy: Taxonomy) -> dict[Key, _State]:
    """Read and lock (PostgreSQL: FOR UPDATE, in key order, as new rows are inserted) the stored state."""
    if not keys:
        return {}
    if session.get_bind().dialect.name == "postgresql":
        results = [session.execute(_LOCK_PG, {"systems": [k[0] for k in keys], "external_ids": [k[1] for k in keys]})]
    else:
        results = [session.execute(_LOCK_OTHER, {"keys": keys[i:i + _LOCK_CHUNK]})
                   for i in range(0, len(keys), _LOCK_CHUNK)]
    states = {(s, e): _State(i, v, h, set(), set(), created_at=c, source_version=sv)
              for result in results for i, s, e, v, h, c, sv in result}
    # Codes on stored reports only matter for retired codes, which may stay on a report that has them.
    if states and any(row.retired_at for kind in (CodeKind.TARGET_GROUP, CodeKind.SERVICE)
                      for row in taxonomy.codes[kind].values()):
        by_id = {state.report_id: state for state in states.values()}
        for report_id, code in session.execute(
            select(ReportTargetGroup.report_id, ReportTargetGroup.code).where(ReportTargetGroup.report_id.in_(by_id))
        ):
            by_id[report_id].target_groups.add(code)
        for report_id, code in session.execute(
            select(ReportService.report_id, ReportService.code).where(ReportService.report_id.in_(by_id))
        ):
            by_id[report_id].services.add(code)
    return states


def _insert(writer: BulkWriter, states: list[_State]) -> dict[Key, int]:
    """Insert new reports, skipping any that a concurrent transaction created; returns the ids we created."""
    if not states:
        return {}
    columns = list(states[0].values or ())
    rows = [[state.values[c] for c in columns] for state in states]  # type: ignore[index]
    return {(source_system, external_id): report_id for report_id, source_system, external_id
            in writer.insert_new(_REPORTS, columns, rows, ("source_system", "external_id"))}


def _update(session: Session, states: list[_State]) -> None:
    """Write newer versions over stored rows (locked by _lock), one executemany."""
    if not states:
        return
    session.execute(update(Report), [{"id": s.report_id, **s.values} for s in states])  # type: ignore[dict-item]


def _write_children(
    session: Session, writer: BulkWriter, created: list[_State], changed: list[_State], replace_scores: bool
) -> None:
    """Store target groups, services, links, effective labels and scores of new and changed reports."""
    changed_ids = [s.report_id for s in changed]
    if changed_ids:
        tables = [table for table, _ in _CHILDREN] + ([ReportScore.__table__] if replace_scores else [])
        for table in tables:
            session.execute(delete(table).where(table.c.report_id.in_(changed_ids)))
    groups: list[tuple[object, ...]] = []
    services: list[tuple[object, ...]] = []
    links: list[tuple[object, ...]] = []
    label_rows: list[tuple[object, ...]] = []
    scores: list[tuple[object, ...]] = []
    for state in [*created, *changed]:
        report_id = state.report_id
        assert report_id is not None and state.effective is not None
        groups += [(report_id, c) for c in sorted(state.target_groups)]
        services += [(report_id, c) for c in sorted(state.services)]
        links += [(report_id, e) for e in state.links]
        assert state.values is not None
        reported_on = state.values["reported_on"]
        label_rows += [(*row, reported_on) for row in labels.label_rows(report_id, state.effective)]
        if state.scored is not None:
            scores.append(state.scored.row(report_id))
    writer.insert([*((table, columns, rows) for (table, columns), rows
                     in zip(_CHILDREN, (groups, services, links, label_rows), strict=True)),
                   (ReportScore.__table__, SCORE_COLUMNS, scores)])


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
