"""Idempotent, race-safe upsert of delivered reports: one code path for single and batch delivery.

A delivery is applied when its source_version is newer than the stored one, acknowledged unchanged
when equal with equal content, refused as a conflict when equal with other content, and acknowledged
but not applied (stale) when older. Rows are locked in a fixed order and new rows are created with
INSERT … ON CONFLICT DO NOTHING, so concurrent deliveries of one report end as one row.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Select, delete, insert, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.db import utcnow
from app.errors import Conflict, FieldError, InvalidInput, validation_fields
from app.ingest.mapping import report_values
from app.ingest.schemas import BatchItemResult, ItemError, Outcome, ReportIn
from app.report.models import Report, ReportLink, ReportService, ReportTargetGroup
from app.review import labels
from app.taxonomy.models import CodeKind
from app.taxonomy.service import Taxonomy, load_taxonomy

Key = tuple[str, str]
Scorer = Callable[[Session, Sequence[int]], object]
_INSERT_CHUNK = 500  # 500 rows x 22 columns stays under SQLite's 32,766 bound parameters
_REPORT_ADAPTER = TypeAdapter(ReportIn)


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


@dataclass
class _State:
    """A report's state while a batch is planned: as stored, then as the batch leaves it."""

    report_id: int | None
    version_key: int
    content_hash: str
    target_groups: set[str]
    services: set[str]
    values: dict[str, object] | None = None
    links: list[str] = field(default_factory=list)


def parse_items(raw_items: Sequence[object]) -> list[Delivery]:
    """Validate each raw item on its own; a bad item becomes a Delivery with errors, not an exception."""
    deliveries = []
    for index, raw in enumerate(raw_items):
        external_id = raw.get("external_id") if isinstance(raw, dict) else None
        external_id = external_id if isinstance(external_id, str) else None
        try:
            deliveries.append(Delivery(index, _REPORT_ADAPTER.validate_python(raw), external_id=external_id))
        except ValidationError as exc:
            deliveries.append(Delivery(index, None, validation_fields(exc.errors()), external_id))
    return deliveries


def upsert_report(
    session: Session, item: ReportIn, local: ZoneInfo, scorer: Scorer | None = None
) -> tuple[Outcome, Report]:
    """Apply one delivery; 422 for unknown or retired codes, 409 for a same-version content change."""
    (result,) = upsert_reports(session, [Delivery(0, item, external_id=item.external_id)], local, scorer)
    if result.outcome is Outcome.INVALID:
        raise InvalidInput("; ".join(f"{e.field}: {e.reason}" for e in result.errors), result.errors)
    if result.outcome is Outcome.CONFLICT:
        raise Conflict(result.errors[0].reason, result.errors)
    report = session.get(Report, result.report_id, populate_existing=True)
    assert report is not None  # it was just written or locked in this transaction
    return result.outcome, report


def upsert_reports(
    session: Session, deliveries: Sequence[Delivery], local: ZoneInfo, scorer: Scorer | None = None
) -> list[ItemOutcome]:
    """Apply deliveries in order, in few round trips; one item's failure leaves the others alone.

    New and changed reports are scored by `scorer` (if given) in the same transaction.
    """
    taxonomy = load_taxonomy(session)
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
    inserted = _insert(session, [plans[k][0] for k in new_keys])  # type: ignore[misc]
    lost = [k for k in new_keys if k not in inserted]
    if lost:
        # Another transaction created these between our lock and our insert: plan them again
        # against the row it committed (the insert waited for that commit).
        fresh = _lock(session, lost, taxonomy)
        for key in lost:
            plans[key] = _plan(key, [deliveries[p] for p in by_key[key]], fresh[key], taxonomy, local)
    for key, report_id in inserted.items():
        state = plans[key][0]
        assert state is not None
        state.report_id = report_id

    changed = [state for key, (state, _) in plans.items()
               if state is not None and state.values is not None and key not in inserted]
    _update(session, changed)
    _replace_children(session, [plans[k][0] for k in inserted], changed)  # type: ignore[misc]
    written = [*inserted.values(), *(s.report_id for s in changed if s.report_id is not None)]
    if scorer is not None:
        scorer(session, written)
    labels.refresh(session, written)

    for key, (state, results) in plans.items():
        for position, result in zip(by_key[key], results, strict=True):
            result.key = key
            result.report_id = state.report_id if state is not None else None
            outcomes[position] = result
    return outcomes


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
        errors = taxonomy.check_codes(CodeKind.TARGET_GROUP, item.target_groups, "target_groups", present_groups)
        errors += taxonomy.check_codes(CodeKind.SERVICE, item.services_involved, "services_involved",
                                       present_services)
        if errors:
            results.append(ItemOutcome(delivery.index, Outcome.INVALID, errors=errors))
            continue
        values = report_values(taxonomy, item, local)
        version_key = int(values["source_version_key"])  # type: ignore[call-overload]
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
            )
            results.append(ItemOutcome(delivery.index, outcome))
        elif version_key == state.version_key:
            if values["content_hash"] == state.content_hash:
                results.append(ItemOutcome(delivery.index, Outcome.UNCHANGED))
            else:
                results.append(ItemOutcome(delivery.index, Outcome.CONFLICT, errors=[FieldError(
                    field="source_version",
                    reason=f"version {values['source_version']} of {key[0]}/{key[1]} is stored with other "
                           "content; send the change with a higher source_version",
                )]))
        else:
            results.append(ItemOutcome(delivery.index, Outcome.STALE))
    return state, results


def _lock(session: Session, keys: list[Key], taxonomy: Taxonomy) -> dict[Key, _State]:
    """Read and lock (PostgreSQL: FOR UPDATE, in id order) the stored state of these reports."""
    if not keys:
        return {}
    query: Select[tuple[int, str, str, int, str]] = (
        select(Report.id, Report.source_system, Report.external_id, Report.source_version_key, Report.content_hash)
        .where(tuple_(Report.source_system, Report.external_id).in_(keys))
        .order_by(Report.id)
        .with_for_update()
    )
    states = {(s, e): _State(i, v, h, set(), set()) for i, s, e, v, h in session.execute(query)}
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


def _insert(session: Session, states: list[_State]) -> dict[Key, int]:
    """Insert new reports, skipping any that a concurrent transaction created; returns the ids we created."""
    if not states:
        return {}
    dialect = session.get_bind().dialect.name
    insert_fn = postgresql.insert if dialect == "postgresql" else sqlite.insert
    now = utcnow()
    created: dict[Key, int] = {}
    for start in range(0, len(states), _INSERT_CHUNK):
        rows = [{**s.values, "created_at": now, "updated_at": now}  # type: ignore[dict-item]
                for s in states[start:start + _INSERT_CHUNK]]
        statement = (
            insert_fn(Report).values(rows)
            .on_conflict_do_nothing(index_elements=["source_system", "external_id"])
            .returning(Report.id, Report.source_system, Report.external_id)
        )
        for report_id, source_system, external_id in session.execute(statement):
            created[(source_system, external_id)] = report_id
    return created


def _update(session: Session, states: list[_State]) -> None:
    """Write newer versions over stored rows (locked by _lock), one executemany."""
    if not states:
        return
    now = utcnow()
    session.execute(
        update(Report),
        [{"id": s.report_id, **s.values, "updated_at": now} for s in states],  # type: ignore[dict-item]
    )


def _replace_children(session: Session, created: list[_State], changed: list[_State]) -> None:
    """Store target groups, services and links of new and changed reports."""
    changed_ids = [s.report_id for s in changed]
    if changed_ids:
        for table in (ReportTargetGroup, ReportService, ReportLink):
            session.execute(delete(table).where(table.report_id.in_(changed_ids)))
    groups, services, links = [], [], []
    for state in [*created, *changed]:
        groups += [{"report_id": state.report_id, "code": c} for c in sorted(state.target_groups)]
        services += [{"report_id": state.report_id, "code": c} for c in sorted(state.services)]
        links += [{"report_id": state.report_id, "related_external_id": e} for e in state.links]
    for table, rows in ((ReportTargetGroup, groups), (ReportService, services), (ReportLink, links)):
        if rows:
            session.execute(insert(table), rows)


def batch_results(deliveries: Sequence[Delivery], outcomes: Sequence[ItemOutcome]) -> list[BatchItemResult]:
    """Shape the outcomes of a batch for the API, in the order sent."""
    return [
        BatchItemResult(
            index=o.index,
            external_id=o.key[1] if o.key else d.external_id,
            outcome=o.outcome,
            id=o.report_id,
            errors=[ItemError(field=e.field, reason=e.reason) for e in o.errors],
        )
        for d, o in zip(deliveries, outcomes, strict=True)
    ]
