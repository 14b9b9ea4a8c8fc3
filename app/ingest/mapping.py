"""Pure translation of a delivered payload into stored column values; no I/O."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from app.ingest.schemas import ReportIn, ReportingUnitIn
from app.observability import metrics
from app.privacy.redaction import Redacted, redact, redact_optional
from app.taxonomy.service import Taxonomy

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# "Etat for skole – Garnes skole": the agency, then the unit.
_UNIT_SEPARATOR = re.compile(r"\s+[–—-]\s+|\s*/\s*|\s*>\s*")
# 03.12.2025, 3.12.2025 10:00, 03.12.2025 kl. 10.00, 03.12.2025 10:00:15: how Norwegian systems export times.
_NORWEGIAN_DATETIME = re.compile(
    r"^\s*(\d{1,2})\.(\d{1,2})\.(\d{4})(?:[\s,]+(?:kl\.?\s*)?(\d{1,2})[:.](\d{2})(?:[:.](\d{2}))?)?\s*$"
)


def parse_local_datetime(text: str) -> datetime | None:
    """A naive local datetime from Norwegian notation (DD.MM.YYYY with an optional HH:MM or HH.MM), or None
    when the text is not in that notation or is no real date."""
    match = _NORWEGIAN_DATETIME.match(text)
    if match is None:
        return None
    day, month, year, hour, minute, second = (int(g) if g else 0 for g in match.groups())
    try:
        return datetime(year, month, day, hour, minute, second)  # naive: the caller reads it in its local zone
    except ValueError:
        return None


def to_utc(value: datetime, local: ZoneInfo) -> datetime:
    """An aware UTC datetime; a naive one is read as local time (the quality system's clock)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=local)
    return value.astimezone(UTC)


def version_key(version: int | datetime, local: ZoneInfo) -> tuple[str, int]:
    """The version as sent, and an integer that orders versions (epoch microseconds for timestamps)."""
    if isinstance(version, datetime):
        aware = to_utc(version, local)
        delta = aware - _EPOCH
        return aware.isoformat(), (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return str(version), version


@dataclass(frozen=True)
class ResolvedUnit:
    """A reporting unit resolved against the organisation taxonomy; unknown parts kept as text."""

    department_code: str | None
    agency_code: str | None
    unit_name: str | None
    unit_code: str | None
    text: str | None


def resolve_unit(taxonomy: Taxonomy, unit: ReportingUnitIn | str | None) -> ResolvedUnit:
    """Find department and agency codes for the unit the quality system named."""
    if unit is None:
        return ResolvedUnit(None, None, None, None, None)
    if isinstance(unit, str):
        text = unit.strip() or None
        if text is None:
            return ResolvedUnit(None, None, None, None, None)
        parts = [p for p in _UNIT_SEPARATOR.split(text, maxsplit=1) if p]
        agency = taxonomy.find_agency(parts[0])
        department = taxonomy.department_of(agency) if agency else taxonomy.find_department(parts[0])
        # Without a known agency or department the whole text is the unit's name.
        unit_name = (parts[1] if len(parts) > 1 else None) if agency or department else text
        return ResolvedUnit(department, agency, unit_name, None, text)
    agency = taxonomy.find_agency(unit.agency)
    department = taxonomy.find_department(unit.department) or taxonomy.department_of(agency)
    unresolved = [
        name for name, code in ((unit.department, department), (unit.agency, agency)) if name and not code
    ]
    text = " – ".join([*unresolved, unit.unit] if unresolved and unit.unit else unresolved) or None
    return ResolvedUnit(department, agency, (unit.unit or "").strip() or None,
                        (unit.unit_code or "").strip() or None, text)


def audit_draw(source_system: str, external_id: str) -> float:
    """A uniform number in [0, 1) fixed by the report's identity: random-looking, yet reproducible."""
    digest = hashlib.sha256(f"audit-sample:{source_system}:{external_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def redacted_item(item: ReportIn) -> tuple[ReportIn, Redacted]:
    """The delivery with identifiers removed from every text field it has, and how many were removed.

    Case numbers are not rewritten (they are refused when they hold an identifier, in the schema); codes
    are checked against the taxonomy.
    """
    found = Redacted("")
    texts: dict[str, object] = {}
    for name in ("title", "description", "reported_category", "severity", "status"):
        value = getattr(item, name)
        if isinstance(value, str):
            redacted = redact(value)
            texts[name], found = redacted.text, found + redacted
    unit = item.reporting_unit
    if isinstance(unit, str):
        redacted = redact(unit)
        texts["reporting_unit"], found = redacted.text, found + redacted
    elif unit is not None:
        parts = {}
        for name in ("department", "agency", "unit", "unit_code"):
            redacted = redact_optional(getattr(unit, name))
            parts[name], found = getattr(unit, name) and redacted.text, found + redacted
        texts["reporting_unit"] = unit.model_copy(update=parts)
    return item.model_copy(update=texts), found


def content_hash(item: ReportIn) -> str:
    """A digest of everything a delivery says except its version (of the redacted delivery, as stored)."""
    payload = item.model_dump(mode="json", exclude={"source_version"})
    payload["target_groups"] = sorted(set(payload["target_groups"]))
    payload["services_involved"] = sorted(set(payload["services_involved"]))
    payload["related_external_ids"] = sorted(set(payload["related_external_ids"]))
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def count_redactions(found: Redacted) -> None:
    """Add what redaction removed from a delivery to the service's metrics, by kind."""
    for kind, n in (("identity_number", found.identity_numbers), ("phone_number", found.phone_numbers),
                    ("email", found.emails)):
        if n:
            metrics.REDACTIONS.labels(kind).inc(n)


@dataclass(frozen=True)
class ReportRow:
    """The report row's column values for a delivery (without id, timestamps and effective category)."""

    source_system: str
    external_id: str
    title: str
    description: str
    reported_category: str | None
    category_code: str | None
    occurred_at: datetime | None
    reported_at: datetime
    reported_on: date
    occurred_sort_at: datetime
    department_code: str | None
    agency_code: str | None
    unit_name: str | None
    unit_code: str | None
    reporting_unit_text: str | None
    status: str
    severity: str | None
    source_version: str
    source_version_key: int
    content_hash: str
    redacted_identity_numbers: int
    redacted_phone_numbers: int
    redacted_emails: int
    audit_draw: float

    def columns(self) -> dict[str, object]:
        """Column name to value, in the order of the fields."""
        return dict(vars(self))


def report_values(taxonomy: Taxonomy, item: ReportIn, local: ZoneInfo) -> ReportRow:
    """The report row's column values for a delivery (without id and timestamps of our own).

    Free text is redacted here, before it is stored, hashed, classified or logged.
    """
    item, found = redacted_item(item)
    count_redactions(found)
    unit = resolve_unit(taxonomy, item.reporting_unit)
    version_text, key = version_key(item.source_version, local)
    reported_at = to_utc(item.reported_at, local)
    occurred_at = to_utc(item.occurred_at, local) if item.occurred_at else None
    return ReportRow(
        source_system=item.source_system,
        external_id=item.external_id,
        title=item.title,
        description=item.description,
        reported_category=item.reported_category,
        category_code=taxonomy.map_category(item.reported_category),
        occurred_at=occurred_at,
        reported_at=reported_at,
        reported_on=reported_at.astimezone(local).date(),
        occurred_sort_at=occurred_at or reported_at,
        department_code=unit.department_code,
        agency_code=unit.agency_code,
        unit_name=unit.unit_name,
        unit_code=unit.unit_code,
        reporting_unit_text=unit.text,
        status=item.status,
        severity=item.severity,
        source_version=version_text,
        source_version_key=key,
        content_hash=content_hash(item),
        redacted_identity_numbers=found.identity_numbers,
        redacted_phone_numbers=found.phone_numbers,
        redacted_emails=found.emails,
        audit_draw=audit_draw(item.source_system, item.external_id),
    )
