"""Historical import: a CSV or XLSX export from the quality system, through the same validation and upsert
as the API, in chunks, with a summary and a file of rejected rows. Re-running an import changes nothing."""

from __future__ import annotations

import csv
import re
import tomllib
from collections import Counter
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from app.db import begin_session
from app.ingest.mapping import parse_local_datetime
from app.ingest.schemas import Outcome, ReportIn
from app.ingest.service import parse_items, upsert_reports
from app.registry.scoring import Scorer

LIST_FIELDS = ("target_groups", "services_involved", "related_external_ids")
DATE_FIELDS = ("reported_at", "occurred_at", "source_version")
REQUIRED = tuple(name for name, info in ReportIn.model_fields.items() if info.is_required())
CHUNK = 500
# Headings municipal quality systems use in their exports, per API field (compared as `_heading_key` gives).
NORWEGIAN_HEADINGS: dict[str, tuple[str, ...]] = {
    "external_id": ("saksnr", "saksnummer", "sak nr", "avviksnr", "avviksnummer", "avvik nr", "avvik id", "id",
                    "nr", "løpenr", "løpenummer", "referanse"),
    "source_system": ("kildesystem", "system", "fagsystem"),
    "title": ("tittel", "overskrift", "emne", "kort beskrivelse"),
    "description": ("beskrivelse", "hendelsesbeskrivelse", "beskrivelse av hendelsen", "hva skjedde", "detaljer"),
    "reported_category": ("kategori", "avvikskategori", "avvikstype", "type", "hovedkategori", "underkategori"),
    "occurred_at": ("hendelsesdato", "hendelsestidspunkt", "dato for hendelse", "tidspunkt for hendelse",
                    "hendelse dato", "dato hendelse"),
    "reported_at": ("registrert dato", "registrert", "registreringsdato", "registrert tidspunkt", "dato registrert",
                    "meldt dato", "meldt", "innmeldt dato", "opprettet", "opprettet dato", "dato"),
    "reporting_unit": ("enhet", "melders enhet", "rapporterende enhet", "avdeling", "virksomhet", "organisasjon",
                       "organisasjonsenhet", "tjenestested"),
    "status": ("status", "saksstatus", "behandlingsstatus"),
    "severity": ("alvorlighetsgrad", "alvorlighet", "konsekvens", "konsekvensgrad"),
    "target_groups": ("målgruppe", "målgrupper"),
    "services_involved": ("tjenester", "involverte tjenester", "berørte tjenester", "tjeneste"),
    "related_external_ids": ("relaterte saker", "tilknyttede saker", "relatert"),
    "source_version": ("versjon", "sist endret", "endret", "endret dato", "sist oppdatert", "oppdatert"),
}


class ImportFileError(ValueError):
    """The file or the mapping cannot be read at all."""


@dataclass(frozen=True)
class Mapping:
    """Which column holds which API field, defaults for fields the export lacks, and the list separator."""

    columns: dict[str, str]
    defaults: dict[str, Any] = field(default_factory=dict)
    list_separator: str = ","

    @classmethod
    def detect(cls, headings: list[str]) -> Mapping:
        """Columns recognised by their headings: the API's field names, or common Norwegian headings
        (Saksnr, Tittel, Beskrivelse, Registrert dato, Enhet, …); the first matching heading wins."""
        by_key = {_heading_key(h): h for h in reversed(headings) if h}
        columns: dict[str, str] = {}
        for name in ReportIn.model_fields:
            for candidate in (name, *NORWEGIAN_HEADINGS.get(name, ())):
                heading = by_key.get(_heading_key(candidate))
                if heading is not None and heading not in columns.values():
                    columns[name] = heading
                    break
        separator = ";" if any(name in columns for name in LIST_FIELDS) else ","
        return cls(columns=columns, list_separator=separator)

    def missing(self, headings: list[str]) -> list[str]:
        """Required API fields that neither a present column nor a default provides."""
        present = set(headings)
        return [name for name in REQUIRED if name not in self.defaults and self.columns.get(name) not in present]

    def describe(self) -> str:
        """`Heading → field` for every mapped column, for the user to check."""
        return ", ".join(f"{heading} → {name}" for name, heading in self.columns.items())

    def suggestion(self, headings: list[str]) -> str:
        """A mapping file to start from: the columns recognised, and a line to fill in per missing field."""
        lines = [f'list_separator = "{self.list_separator}"', "[columns]"]
        lines += [f'{name} = "{heading}"' for name, heading in self.columns.items()]
        lines += [f'{name} = "…"  # one of: {", ".join(headings)}' for name in self.missing(headings)
                  if name != "source_version"]
        if "source_version" in self.missing(headings):
            lines += ["[defaults]", "source_version = 1  # or a column that grows with every change"]
        return "\n".join(lines)

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


def _heading_key(heading: str) -> str:
    """A heading compared without case, punctuation and repeated spaces ("Registrert-dato" = "registrert dato")."""
    return " ".join(re.sub(r"[^\w]+", " ", heading.casefold()).split())


def read_headings(path: Path) -> list[str]:
    """The file's column headings, in order."""
    lines = _lines(path)
    try:
        return _headings(next(lines, (1, []))[1])
    finally:
        lines.close()


def read_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, row by column heading) for a CSV (comma or semicolon, UTF-8 with or without BOM) or XLSX."""
    lines = _lines(path)
    headings = _headings(next(lines, (1, []))[1])
    for number, values in lines:
        if any(not (v is None or (isinstance(v, str) and not v.strip())) for v in values):
            yield number, dict(zip(headings, values, strict=False))


def _headings(cells: Sequence[Any]) -> list[str]:
    return [str(h).strip() if h is not None else "" for h in cells]


def _lines(path: Path) -> Generator[tuple[int, Sequence[Any]]]:
    """(line number, cells) of every line of the file, the headings' line first."""
    if path.suffix.lower() == ".xlsx":
        from openpyxl import load_workbook

        workbook = load_workbook(path, read_only=True, data_only=True)
        try:
            yield from enumerate(workbook.worksheets[0].iter_rows(values_only=True), start=1)
        finally:
            workbook.close()
        return
    if path.suffix.lower() != ".csv":
        raise ImportFileError(f"{path.name}: only .csv and .xlsx can be imported")
    with path.open(encoding="utf-8-sig", newline="") as handle:
        sample = handle.read(4096)
        handle.seek(0)
        reader = csv.reader(handle, delimiter=";" if sample.count(";") > sample.count(",") else ",")
        for values in reader:
            yield reader.line_num, values


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
        elif field_name in DATE_FIELDS and isinstance(value, str):
            # Norwegian exports write 03.12.2025 10:00; without an offset it is read as local (Oslo) time.
            parsed = parse_local_datetime(value)
            value = parsed.isoformat() if parsed is not None else value
        elif field_name == "status" and isinstance(value, str):
            value = "_".join(value.split())  # "Under behandling" → under_behandling (the code's form)
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


