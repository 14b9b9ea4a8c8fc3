"""Planning a delivery (no I/O): in delivery order, what each delivery of one report does to its stored state.

A delivery is applied when its source_version is newer than the stored one, acknowledged unchanged when
equal with equal content, refused as a conflict when equal with other content, and acknowledged but not
applied (stale) when older; a version of the other kind (a number after a timestamp or the reverse) is a
conflict.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from app.errors import FieldError
from app.ingest.mapping import ReportRow, report_values
from app.ingest.schemas import Outcome, ReportIn
from app.registry.scoring import Scored
from app.review import labels
from app.taxonomy.models import CodeKind
from app.taxonomy.service import Taxonomy

logger = logging.getLogger("avvik")
Key = tuple[str, str]  # (source_system, external_id)


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
class ReportState:
    """A report's state while a batch is planned: as stored, then as the batch leaves it."""

    report_id: int | None
    version_key: int
    content_hash: str
    target_groups: set[str]
    services: set[str]
    row: ReportRow | None = None  # the report row to write; None while nothing is to be written
    links: list[str] = field(default_factory=list)
    created_at: datetime | None = None
    scored: Scored | None = None  # this delivery's score (None with scoring off)
    effective: labels.Effective | None = None
    source_version: str = ""  # the version as stored (what the answers show)

    def to_write(self) -> ReportRow:
        """The row this state writes (only asked of states planned to be written)."""
        assert self.row is not None
        return self.row


def unreadable(index: int, exc: Exception) -> FieldError:
    """An item that failed in a way validation did not foresee: invalid, logged by type (never its text)."""
    logger.warning("ingest item %d could not be read: %s", index, type(exc).__name__)
    return FieldError(field="item", reason="could not be read; nothing of it was stored")


def plan(
    key: Key, deliveries: list[Delivery], stored: ReportState | None, taxonomy: Taxonomy, local: ZoneInfo
) -> tuple[ReportState | None, list[ItemOutcome]]:
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
                row = report_values(taxonomy, item, local)
        except Exception as exc:  # one item's unforeseen failure must not sink the others
            errors = [unreadable(delivery.index, exc)]
        if errors:
            results.append(ItemOutcome(delivery.index, Outcome.INVALID, errors=errors))
            continue
        version = row.source_version
        if state is not None and version_kind(version) != version_kind(state.source_version):
            results.append(ItemOutcome(delivery.index, Outcome.CONFLICT, source_version=version, errors=[FieldError(
                field="source_version",
                reason=f"this version is a {version_kind(version)} but the stored version "
                       f"{state.source_version} is a {version_kind(state.source_version)}; a report's versions "
                       "must all be numbers or all timestamps",
            )]))
            continue
        if state is None or row.source_version_key > state.version_key:
            outcome = Outcome.CREATED if state is None else Outcome.UPDATED
            state = ReportState(
                report_id=state.report_id if state else None,
                version_key=row.source_version_key,
                content_hash=row.content_hash,
                target_groups=set(item.target_groups),
                services=set(item.services_involved),
                row=row,
                links=sorted(set(item.related_external_ids)),
                created_at=state.created_at if state else None,
                source_version=version,
            )
            results.append(ItemOutcome(delivery.index, outcome, source_version=version))
        elif row.source_version_key == state.version_key:
            if row.content_hash == state.content_hash:
                results.append(ItemOutcome(delivery.index, Outcome.UNCHANGED, source_version=version))
            else:
                results.append(ItemOutcome(delivery.index, Outcome.CONFLICT, source_version=version, errors=[FieldError(
                    field="source_version",
                    reason=f"version {version} of {key[0]}/{key[1]} is stored with other "
                           "content; send the change with a higher source_version",
                )]))
        else:
            results.append(ItemOutcome(delivery.index, Outcome.STALE, source_version=version))
    return state, results


def version_kind(version: str) -> str:
    """'number' or 'timestamp': numbers are stored as digits, timestamps in ISO form."""
    return "number" if version.isdigit() else "timestamp"
