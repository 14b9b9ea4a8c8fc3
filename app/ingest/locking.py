"""The locks an upsert takes: the advisory lock upserts share (PostgreSQL), and the stored rows it reads.

Rows are locked in a fixed order and new rows are created with INSERT … ON CONFLICT DO NOTHING (app.ingest.writes),
so concurrent deliveries of one report end as one row.
"""

from __future__ import annotations

from sqlalchemy import String, and_, bindparam, collate, func, select, text, tuple_
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from app.ingest.plan import Key, ReportState
from app.report.models import Report, ReportService, ReportTargetGroup
from app.taxonomy.models import CodeKind
from app.taxonomy.service import Taxonomy

_LOCK_CHUNK = 500  # keys per lock query where keys are bound one by one (SQLite allows 32,766 parameters)
# A transaction-level advisory lock every PostgreSQL upsert holds: shared on a first attempt (upserts run
# side by side), exclusive on a retry (it waits for the upserts under way, then runs alone, so it cannot
# deadlock with another upsert again). Rolling back to the savepoint releases it with the rest.
_UPSERT_LOCK_KEY = 0x6176_7669_6B00  # "avvik"
_UPSERT_LOCK = {True: text("SELECT pg_advisory_xact_lock_shared(:key)"),
                False: text("SELECT pg_advisory_xact_lock(:key)")}

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


def take_upsert_lock(session: Session, shared: bool) -> None:
    """Hold the upserts' advisory lock (PostgreSQL) until the transaction or savepoint ends."""
    session.execute(_UPSERT_LOCK[shared], {"key": _UPSERT_LOCK_KEY})


def lock_stored(session: Session, keys: list[Key], taxonomy: Taxonomy) -> dict[Key, ReportState]:
    """Read and lock (PostgreSQL: FOR UPDATE, in key order, as new rows are inserted) the stored state."""
    if not keys:
        return {}
    if session.get_bind().dialect.name == "postgresql":
        results = [session.execute(_LOCK_PG, {"systems": [k[0] for k in keys], "external_ids": [k[1] for k in keys]})]
    else:
        results = [session.execute(_LOCK_OTHER, {"keys": keys[i:i + _LOCK_CHUNK]})
                   for i in range(0, len(keys), _LOCK_CHUNK)]
    states = {(s, e): ReportState(i, v, h, set(), set(), created_at=c, source_version=sv)
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
