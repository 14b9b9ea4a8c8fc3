"""Writing planned reports: each report row once, its child rows in bulk (COPY or one pipeline on PostgreSQL).

A row's score and effective labels are computed before it is written (app.ingest.service), so nothing here
writes a row twice.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Table, delete, update
from sqlalchemy.orm import Session

from app.db import Base
from app.ingest.bulk import BulkWriter
from app.ingest.plan import Key, ReportState
from app.registry.scoring import SCORE_COLUMNS
from app.report.models import Report, ReportLabel, ReportLink, ReportScore, ReportService, ReportTargetGroup
from app.review import labels


def _table(model: type[Base]) -> Table:
    """A model's table, typed as one (a mapped class declares only a FromClause)."""
    return Base.metadata.tables[model.__tablename__]


_REPORTS = _table(Report)
_SCORES = _table(ReportScore)
_CHILDREN = (
    (_table(ReportTargetGroup), ("report_id", "code")),
    (_table(ReportService), ("report_id", "code")),
    (_table(ReportLink), ("report_id", "related_external_id")),
    # The label's copy of the reporting date is written here (the database would look it up per label).
    (_table(ReportLabel), ("report_id", "dimension", "code", "provenance", "reported_on")),
)


def report_columns(state: ReportState, now: datetime, created: bool) -> dict[str, object]:
    """The report row of a planned, labelled state: as delivered, its effective category, its timestamps."""
    assert state.effective is not None
    columns = {**state.to_write().columns(), **labels.category_columns(state.effective)}
    if created:
        columns["created_at"] = now
    columns["updated_at"] = now
    return columns


def insert_new(writer: BulkWriter, states: list[ReportState], now: datetime) -> dict[Key, int]:
    """Insert new reports, skipping any that a concurrent transaction created; returns the ids we created."""
    if not states:
        return {}
    lines = [report_columns(state, now, created=True) for state in states]
    columns = list(lines[0])
    rows = [[line[c] for c in columns] for line in lines]
    return {(source_system, external_id): report_id for report_id, source_system, external_id
            in writer.insert_new(_REPORTS, columns, rows, ("source_system", "external_id"))}


def update_changed(session: Session, states: list[ReportState], now: datetime) -> None:
    """Write newer versions over stored rows (locked by app.ingest.locking), one executemany."""
    if not states:
        return
    session.execute(update(Report), [{"id": s.report_id, **report_columns(s, now, created=False)} for s in states])


def write_children(
    session: Session, writer: BulkWriter, created: list[ReportState], changed: list[ReportState], replace_scores: bool
) -> None:
    """Store target groups, services, links, effective labels and scores of new and changed reports."""
    changed_ids = [s.report_id for s in changed]
    if changed_ids:
        tables = [table for table, _ in _CHILDREN] + ([_SCORES] if replace_scores else [])
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
        reported_on = state.to_write().reported_on
        label_rows += [(*row, reported_on) for row in labels.label_rows(report_id, state.effective)]
        if state.scored is not None:
            scores.append(state.scored.row(report_id))
    writer.insert([*((table, columns, rows) for (table, columns), rows
                     in zip(_CHILDREN, (groups, services, links, label_rows), strict=True)),
                   (_SCORES, SCORE_COLUMNS, scores)])
