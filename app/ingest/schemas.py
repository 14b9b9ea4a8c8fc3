"""The payload as the quality system sends it, and what ingest answers."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

from app.fields import EARLIEST, LATEST, Code, IsoDateTime, Status, without_nul
from app.privacy.redaction import redact

MAX_DESCRIPTION = 20_000


def _no_identifier(value: str) -> str:
    # A case number is the idempotency key and is shown in every list, export and audit answer, so it is
    # never rewritten (two cases would merge into one marker) and never stored holding an identity number
    # or an e-mail address: such a value is refused, naming the field. Phone-like digits are allowed,
    # since eight-digit case numbers are common.
    found = redact(value)
    if found.identity_numbers or found.emails:
        raise ValueError("looks like it holds a national identity number or an e-mail address, which a case "
                         "number must not; send the quality system's case number")
    return value


ExternalId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
                       AfterValidator(_no_identifier)]


def _source_version(value: object) -> int | datetime:
    # One validator instead of an int|datetime union: Pydantic would read a refused number as a Unix
    # time, and union errors name the branches instead of the field.
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value < 2**63:
            raise ValueError("a version number must be between 0 and 2^63-1")
        return value
    if isinstance(value, datetime):
        return _in_range(value)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return _in_range(parsed)
    raise ValueError("must be a whole number or an ISO 8601 date-time")


def _in_range(value: datetime) -> datetime:
    # The same range as every other time: outside it the conversion to UTC (and the version key) overflows.
    if not EARLIEST <= value.date() <= LATEST:
        raise ValueError(f"a version timestamp must be between {EARLIEST} and {LATEST}")
    return value


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
                                                    pattern=r"^[a-z0-9][a-z0-9_.-]*$"),
                             AfterValidator(_no_identifier)] = "bkkvalitet"
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


class IngestedReport(BaseModel):
    """What a delivery did: the outcome, the stored report's id and the versions, never its text or labels.

    The integration may deliver any case number, so an answer that showed the stored report would let an
    integration key read every report by guessing case numbers.
    """

    outcome: Outcome
    id: int
    source_system: str
    external_id: str
    source_version: str = Field(description="The version this delivery carried, as stored (timestamps in UTC)")
    stored_version: str = Field(description="The version stored after this delivery: higher when it was stale")


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
    external_id: str | None = Field(description="The item's case number as sent (identifiers removed)")
    outcome: Outcome
    id: int | None = None
    source_version: str | None = Field(default=None, description="The version this item carried")
    stored_version: str | None = Field(default=None, description="The version stored after this item")
    errors: list[ItemError] = []


class BatchOut(BaseModel):
    """One result per item, and counts by outcome."""

    results: list[BatchItemResult]
    counts: dict[Outcome, int]
