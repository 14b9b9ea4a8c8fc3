"""The audit table: never free text, never updated or deleted through the API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, UTCDateTime, utcnow


class AuditEvent(Base):
    """One access to free text, or one change made by a person or a key."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_event_at_id", "at", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(200), index=True)  # key:<name> or user:<oid>@<tenant>
    actor_kind: Mapped[str] = mapped_column(String(20))
    subject: Mapped[str] = mapped_column(String(100))
    tenant: Mapped[str | None] = mapped_column(String(100))
    roles: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(60), index=True)
    method: Mapped[str] = mapped_column(String(10))
    endpoint: Mapped[str] = mapped_column(String(200))
    # The filter of a list or export, with the free-text search masked.
    query: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    detail: Mapped[str | None] = mapped_column(String(200))  # e.g. the code a taxonomy change touched
    request_id: Mapped[str | None] = mapped_column(String(64))

    reports: Mapped[list[AuditEventReport]] = relationship(order_by="AuditEventReport.report_id", lazy="selectin")

    @property
    def report_ids(self) -> list[int]:
        """The reports whose free text this event showed or changed."""
        return [r.report_id for r in self.reports]


class AuditEventReport(Base):
    """A report an audit event concerns: answers "who has seen this report?" through an index."""

    __tablename__ = "audit_event_report"
    __table_args__ = (Index("ix_audit_event_report_report_event", "report_id", "event_id"),)

    event_id: Mapped[int] = mapped_column(ForeignKey("audit_event.id"), primary_key=True)
    # No foreign key to report: the audit trail must outlive anything it refers to.
    report_id: Mapped[int] = mapped_column(Integer, primary_key=True)
