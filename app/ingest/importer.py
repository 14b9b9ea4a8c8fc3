"""Historical import: a CSV or XLSX export from the quality system, through the same validation and upsert
as the API, in chunks, with a summary and a file of rejected rows. Re-running an import changes nothing."""

from __future__ import annotations

import csv
import tomllib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from app.db import begin_session
from app.ingest.schemas import Outcome, ReportIn
from app.ingest.service import parse_items, upsert_reports
from app.review.scoring import Scorer

LIST_FIELDS = ("target_groups", "services_involved", "related_external_ids")
CHUNK = 500


class ImportFileError(ValueError):
    """The file or the mapping cannot be read at all."""


@dataclass(frozen=True)
class Mapping:
    """Which column holds which API field, defaults for fields the export lacks, and the list separator."""

    columns: dict[str, str]
    defaults: dict[str, Any] = field(default_factory=dict)
    list_separator: str = ","

    @classmethod
    def default(cls) -> Mapping:
        """Column names equal to the API's field names."""
        return cls(columns={name: name for name in ReportIn.model_fields})

    @classmethod
    def load(cls, path: Path) -> Mapping:
        """Read a mapping file: [columns] api_field = "Column heading", [defaults] api_field = value."""
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ImportFileError(f"cannot read mapping {path}: {exc}") from exc
        columns = data.get("columns", {})
        unknown = (set(columns) | set(data.get("defaults", {}))) - set(ReportIn.model_fields)
        if unknown:
            raise ImportFileError(f"mapping names unknown fields: {', '.join(sorted(unknown))}")
        return cls(columns=dict(columns), defaults=dict(data.get("defaults", {})),
                   list_separator=str(data.get("list_separator", ",")))


@dataclass
class ImportSummary:
    """What an import did."""

    counts: Counter[str] = field(default_factory=Counter)
    invalid: list[tuple[int, str]] = field(default_factory=list)  # (line number, reasons)


def read_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, row by column heading) for a CSV (comma or semicolon, UTF-8 with or without BOM) or XLSX."""
    if path.suffix.lower() == ".xlsx":
        from openpyxl import load_workbook

        workbook = load_workbook(path, read_only=True, data_only=True)
        sheet = workbook.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        header = [str(h).strip() if h is not None else "" for h in next(rows, ())]
        for number, values in enumerate(rows, start=2):
            if any(v not in (None, "") for v in values):
                yield number, dict(zip(header, values, strict=False))
        workbook.close()
        return
    if path.suffix.lower() != ".csv":
        raise ImportFileError(f"{path.name}: only .csv and .xlsx can be imported")
    with path.open(encoding="utf-8-sig", newline="") as handle:
        sample = handle.read(4096)
        handle.seek(0)
        delimiter = ";" if sample.count(";") > sample.count(",") else ","
        reader = csv.DictReader(handle, delimiter=delimiter)
        for row in reader:
            if any((v or "").strip() for v in row.values() if isinstance(v, str)):
                yield reader.line_num, {k.strip(): v for k, v in row.items() if k is not None}


def to_payload(row: dict[str, Any], mapping: Mapping) -> dict[str, Any]:
    """A row as an API payload: mapped columns, empty cells left out, list fields split."""
    payload: dict[str, Any] = dict(mapping.defaults)
    for field_name, column in mapping.columns.items():
        value = row.get(column)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if field_name in LIST_FIELDS:
            value = [part.strip() for part in str(value).split(mapping.list_separator) if part.strip()]
        elif field_name == "source_version" and isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        elif isinstance(value, float) and value.is_integer():
            value = int(value)
        elif hasattr(value, "isoformat"):
            value = value.isoformat()
        payload[field_name] = value.strip() if isinstance(value, str) else value
    return payload


def import_file(
    maker: sessionmaker[Session], path: Path, mapping: Mapping, local: ZoneInfo, scorer: Scorer | None,
    rejected: Path | None = None, progress: Callable[[int], object] | None = None,
) -> ImportSummary:
    """Import every row, one transaction per chunk of 500; invalid rows are reported and written to `rejected`."""
    summary = ImportSummary()
    rejected_rows: list[dict[str, Any]] = []
    chunk: list[tuple[int, dict[str, Any]]] = []

    def flush() -> None:
        deliveries = parse_items([to_payload(row, mapping) for _, row in chunk])
        with begin_session(maker, writes=True) as session:
            outcomes = upsert_reports(session, deliveries, local, scorer)
        for (line, row), delivery, outcome in zip(chunk, deliveries, outcomes, strict=True):
            summary.counts[outcome.outcome.value] += 1
            if outcome.outcome in (Outcome.INVALID, Outcome.CONFLICT):
                reasons = "; ".join(f"{e.field}: {e.reason}" for e in outcome.errors or delivery.errors)
                summary.invalid.append((line, reasons))
                rejected_rows.append({**row, "line": line, "error": reasons})
        if progress:
            progress(len(chunk))
        chunk.clear()

    for line, row in read_rows(path):
        chunk.append((line, row))
        if len(chunk) >= CHUNK:
            flush()
    if chunk:
        flush()
    if rejected is not None and rejected_rows:
        columns = list(dict.fromkeys(k for r in rejected_rows for k in r))
        with rejected.open("w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns, delimiter=";")
            writer.writeheader()
            writer.writerows(rejected_rows)
    return summary


