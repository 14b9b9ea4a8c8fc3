"""Writing and reading the audit log; an audit row that cannot be written stops the answer (503)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from sqlalchemy import exists, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.audit.models import AuditEvent, AuditEventReport
from app.audit.schemas import AuditEventOut, AuditPage, AuditQuery
from app.auth.principal import Principal
from app.db import utcnow
from app.errors import Unavailable
from app.privacy.redaction import redact

MASKED_PARAMETERS = {"q"}  # free text a person typed: never copied into the audit log


def record(
    session: Session,
    request: Request,
    principal: Principal,
    action: str,
    report_ids: Iterable[int] | None = None,
    query: dict[str, Any] | None = None,
    detail: str | None = None,
) -> int:
    """Append an audit row in the request's transaction and return its id; 503 if it cannot be written."""
    route = request.scope.get("route")
    event = AuditEvent(
        at=utcnow(),
        actor=principal.actor,
        actor_kind=principal.kind,
        subject=principal.subject,
        tenant=principal.tenant,
        roles=",".join(sorted(r.value for r in principal.roles)),
        action=action,
        method=request.method,
        endpoint=getattr(route, "path", request.url.path),
        query=mask_query(query) if query is not None else None,
        detail=redact(detail).text if detail else None,
        request_id=getattr(request.state, "request_id", None),
    )
    try:
        session.add(event)
        session.flush()
        if report_ids:
            session.execute(insert(AuditEventReport),
                            [{"event_id": event.id, "report_id": r} for r in sorted(set(report_ids))])
    except SQLAlchemyError as exc:
        raise Unavailable("the audit log cannot be written, so nothing is shown; retry later",
                          headers={"Retry-After": "5"}) from exc
    return event.id


EXPORT_AUDIT_CHUNK = 1000


def audited_export(maker: sessionmaker[Session], event_id: int, rows: Iterable[dict[str, Any]],
                   chunk: int = EXPORT_AUDIT_CHUNK) -> Iterator[dict[str, Any]]:
    """The rows of an export as it streams, with the report ids of each chunk written to the export's audit
    event, and committed, before the chunk is sent: the log says which reports left, not just the filter.
    The request's transaction has ended when the body streams, so each chunk's ids are written in a session
    of their own; if they cannot be written the download stops there and the chunk is never sent."""
    pending: list[dict[str, Any]] = []
    for row in rows:
        pending.append(row)
        if len(pending) >= chunk:
            _record_exported(maker, event_id, pending)
            yield from pending
            pending = []
    if pending:
        _record_exported(maker, event_id, pending)
        yield from pending


def _record_exported(maker: sessionmaker[Session], event_id: int, rows: list[dict[str, Any]]) -> None:
    with maker.begin() as own:
        dialect = postgresql if own.get_bind().dialect.name == "postgresql" else sqlite
        # A report moved by an update while the export pages may be read twice; it left once as far as the log goes.
        own.execute(dialect.insert(AuditEventReport).on_conflict_do_nothing(),
                    [{"event_id": event_id, "report_id": r} for r in sorted({row["id"] for row in rows})])


def record_cli(session: Session, actor: str, action: str, detail: str) -> None:
    """Append an audit row for a change made from the command line."""
    session.add(AuditEvent(at=utcnow(), actor=f"cli:{actor}", actor_kind="cli", subject=actor, tenant=None,
                           roles="admin", action=action, method="CLI", endpoint="avvik", detail=detail))
    session.flush()


def mask_query(query: dict[str, Any]) -> dict[str, Any]:
    """A filter without empty values, with free-text search masked and identifiers removed from every other
    text value as report text is redacted (`unit=Garnes skole 01042381248` is kept as `unit=Garnes skole
    [fødselsnummer]`)."""
    masked = {}
    for key, value in query.items():
        if value is None or value == [] or value == "":
            continue
        masked[key] = "[masked]" if key in MASKED_PARAMETERS else _redacted(value)
    return masked


def export_row(event: AuditEventOut, local: ZoneInfo) -> dict[str, Any]:
    """An audit row as an export line: its time in local time, its filter as JSON (as the API shows it)."""
    line = event.model_dump()
    line["at"] = event.at.astimezone(local)
    line["query"] = json.dumps(event.query, ensure_ascii=False, sort_keys=True) if event.query is not None else None
    return line


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value).text
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value


def list_events(session: Session, query: AuditQuery, local: ZoneInfo) -> AuditPage:
    """A page of audit rows, newest first."""
    rows = list(session.scalars(_select(query, local).limit(query.limit + 1)))
    page, more = rows[:query.limit], len(rows) > query.limit
    return AuditPage(items=[AuditEventOut.model_validate(r) for r in page],
                     next_before_id=page[-1].id if more and page else None)


def iter_events(session: Session, query: AuditQuery, local: ZoneInfo, chunk: int = 1000) -> Iterator[AuditEventOut]:
    """Every matching row, newest first, fetched in chunks (for exports)."""
    before = query.before_id
    while True:
        page = list_events(session, query.model_copy(update={"before_id": before, "limit": chunk}), local)
        yield from page.items
        if page.next_before_id is None:
            return
        before = page.next_before_id


def _select(query: AuditQuery, local: ZoneInfo) -> Any:
    statement = select(AuditEvent).order_by(AuditEvent.id.desc())
    if query.actor:
        statement = statement.where(AuditEvent.actor == query.actor)
    if query.action:
        statement = statement.where(AuditEvent.action == query.action)
    if query.before_id is not None:
        statement = statement.where(AuditEvent.id < query.before_id)
    if query.date_from:
        statement = statement.where(AuditEvent.at >= datetime.combine(query.date_from, time(0), tzinfo=local))
    if query.date_to:
        end = datetime.combine(query.date_to + timedelta(days=1), time(0), tzinfo=local)
        statement = statement.where(AuditEvent.at < end)
    if query.report_id is not None:
        statement = statement.where(exists().where(AuditEventReport.event_id == AuditEvent.id,
                                                   AuditEventReport.report_id == query.report_id))
    return statement
