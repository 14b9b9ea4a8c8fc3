"""The payload as the quality system sends it, and what ingest answers."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, StringConstraints, WithJsonSchema, model_validator

from app.fields import Code, IsoDateTime, Status, without_nul
from app.report.schemas import ReportDetail

ExternalId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
MAX_DESCRIPTION = 20_000


def _source_version(value: object) -> int | datetime:
    # One validator instead of an int|datetime union: Pydantic would read a refused number as a Unix
    # time, and union errors name the branches instead of the field.
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value < 2**63:
            raise ValueError("a version number must be between 0 and 2^63-1")
        return value
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError("must be a whole number or an ISO 8601 date-time")


SourceVersion = Annotated[
    int | datetime,
    PlainValidator(_source_version),
    WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "format": "date-time"}]}),
]


class ReportingUnitIn(BaseModel):
    """Where the report was filed; codes or names, whichever the quality system has."""

    model_config = ConfigDict(extra="forbid")

    department: str | None = Field(default=None, max_length=200, description="Department code or name")
    agency: str | None = Field(default=None, max_length=200, description="Agency (etat) code or name")
    unit: str | None = Field(default=None, max_length=200, description="Unit name, e.g. a school")
    unit_code: str | None = Field(default=None, max_length=80)


class ReportIn(BaseModel):
    """One deviation report as BkKvalitet delivers it; unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")

    external_id: ExternalId = Field(description="The quality system's case number")
    source_system: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50,
                                                    pattern=r"^[a-z0-9][a-z0-9_.-]*$")] = "bkkvalitet"
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
    description: str = Field(default="", max_length=MAX_DESCRIPTION)
    reported_category: str | None = Field(default=None, max_length=300,
                                          description="The category label or code the reporter chose")
    occurred_at: IsoDateTime | None = Field(default=None, description="Without an offset: Europe/Oslo time")
    reported_at: IsoDateTime = Field(description="When the report was filed; without an offset: Europe/Oslo time")
    reporting_unit: ReportingUnitIn | Annotated[str, StringConstraints(max_length=400)] | None = Field(
        default=None, description="An object, or text such as 'Etat for skole – Garnes skole'"
    )
    status: Status = "registrert"
    severity: str | None = Field(default=None, max_length=40)
    target_groups: list[Code] = Field(default_factory=list, max_length=20)
    services_involved: list[Code] = Field(default_factory=list, max_length=40)
    related_external_ids: list[ExternalId] = Field(default_factory=list, max_length=100)
    source_version: SourceVersion = Field(
        description="Grows with every change in the source: a number or a timestamp"
    )

    @model_validator(mode="before")
    @classmethod
    def _drop_nul(cls, data: Any) -> Any:
        return without_nul(data)


class Outcome(enum.StrEnum):
    """What a delivery did to the stored report."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    STALE = "stale"
    CONFLICT = "conflict"
    INVALID = "invalid"


class IngestedReport(ReportDetail):
    """The stored report after a delivery, and what the delivery did."""

    outcome: Outcome


class BatchIn(BaseModel):
    """Up to 1,000 reports; each item is validated on its own so that one bad item sinks nothing else."""

    model_config = ConfigDict(extra="forbid")

    # Items are parsed one by one in the service, so that a malformed item is reported, not fatal.
    reports: list[Any] = Field(
        min_length=1,
        description="Items as in POST /api/v1/reports",
        json_schema_extra={"items": {"$ref": "#/components/schemas/ReportIn"}},
    )


class ItemError(BaseModel):
    """Why one item was not applied."""

    field: str
    reason: str


class BatchItemResult(BaseModel):
    """The result of one item of a batch, in the order sent."""

    index: int
    external_id: str | None
    outcome: Outcome
    id: int | None = None
    errors: list[ItemError] = []


class BatchOut(BaseModel):
    """One result per item, and counts by outcome."""

    results: list[BatchItemResult]
    counts: dict[Outcome, int]
