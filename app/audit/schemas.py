"""API shapes of the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.fields import IsoDate, RowId


class AuditEventOut(BaseModel):
    """One audit row."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor: str
    actor_kind: str
    tenant: str | None
    roles: str
    action: str
    method: str
    endpoint: str
    report_ids: list[int]
    query: dict[str, Any] | None
    detail: str | None
    request_id: str | None


class AuditQuery(BaseModel):
    """Filters of the audit log."""

    model_config = ConfigDict(extra="forbid")

    actor: str | None = Field(default=None, max_length=200)
    action: str | None = Field(default=None, max_length=60)
    report_id: RowId | None = Field(default=None, description="Events that touched this report")
    date_from: IsoDate | None = Field(default=None, alias="from")
    date_to: IsoDate | None = Field(default=None, alias="to")
    limit: int = Field(default=100, ge=1, le=1000)
    before_id: RowId | None = Field(default=None, description="Older events than this id (the next page)")
    format: Literal["json", "csv"] = Field(default="json", description="csv streams every matching row")


class AuditPage(BaseModel):
    """Newest first; pass next_before_id as before_id for the next page."""

    items: list[AuditEventOut]
    next_before_id: int | None
