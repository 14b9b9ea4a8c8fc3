"""Report records: the text the model reads, the labelled corpus format, and its validation."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from classifier.taxonomy import CHILD_AND_YOUTH_GROUPS, SERVICES, TARGET_GROUPS

CORPUS_DIR = Path(__file__).resolve().parent / "corpus"
# Reports derived from public cases live one level down, so the default glob (training) never sees them.
REAL_DERIVED_DIR = CORPUS_DIR / "real_derived"
RECORD_FIELDS = frozenset({"id", "title", "description", "reported_category", "reporting_unit", "labels", "notes"})
PROVENANCE_FIELDS = frozenset({"source_id", "source_kind", "source_url", "source_read_at"})
SOURCE_ID = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
# The real-derived track must look like a quality system's mix: both written standards, mostly negatives.
MIN_NYNORSK_SHARE = 0.20
POSITIVE_SHARE_RANGE = (0.30, 0.50)


class CorpusError(ValueError):
    """A corpus file or record that cannot be used for training."""


@dataclass(frozen=True, slots=True)
class ReportText:
    """What the model reads of one report; reporting_unit is optional but helps find services."""

    id: str
    title: str
    description: str
    reported_category: str | None = None
    reporting_unit: str | None = None


@dataclass(frozen=True, slots=True)
class Labels:
    """The gold answer for one report."""

    samhandling: bool
    barn_unge: bool
    samhandling_barn_unge: bool
    target_groups: tuple[str, ...] = ()
    services: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LabelledReport:
    """One corpus record: the report, its labels, and where it came from (file stem or 'review')."""

    id: str
    title: str
    description: str
    reported_category: str | None
    reporting_unit: str | None
    labels: Labels
    language: str | None = None
    notes: str = ""
    source: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def text(self) -> ReportText:
        """The part of the record the model may read."""
        return ReportText(self.id, self.title, self.description, self.reported_category, self.reporting_unit)

    @classmethod
    def from_dict(cls, record: Mapping[str, Any], source: str = "") -> LabelledReport:
        """Build from a corpus JSON object; raises CorpusError when it breaks the corpus rules."""
        problems = check_record(record, require_all_fields=False)
        if problems:
            raise CorpusError(f"record {record.get('id')!r}: " + "; ".join(problems))
        labels = record["labels"]
        return cls(
            id=str(record["id"]),
            title=record.get("title") or "",
            description=record.get("description") or "",
            reported_category=record.get("reported_category"),
            reporting_unit=record.get("reporting_unit"),
            labels=Labels(
                samhandling=labels["samhandling"],
                barn_unge=labels["barn_unge"],
                samhandling_barn_unge=labels["samhandling_barn_unge"],
                target_groups=tuple(labels.get("target_groups", ())),
                services=tuple(labels.get("services", ())),
            ),
            language=record.get("language"),
            notes=record.get("notes") or "",
            source=source or str(record.get("source") or ""),
            extra={k: v for k, v in record.items() if k not in RECORD_FIELDS | {"language", "source"}},
        )

    def to_dict(self) -> dict[str, Any]:
        """The corpus JSON object of this record."""
        out: dict[str, Any] = {
            "id": self.id, "title": self.title, "description": self.description,
            "reported_category": self.reported_category, "reporting_unit": self.reporting_unit,
            "labels": {
                "samhandling": self.labels.samhandling, "barn_unge": self.labels.barn_unge,
                "samhandling_barn_unge": self.labels.samhandling_barn_unge,
                "target_groups": list(self.labels.target_groups), "services": list(self.labels.services),
            },
            "notes": self.notes,
        }
        if self.language:
            out["language"] = self.language
        return out


def as_labelled(records: Iterable[LabelledReport | Mapping[str, Any]]) -> list[LabelledReport]:
    """Accept records as LabelledReport or corpus-format dicts."""
    return [r if isinstance(r, LabelledReport) else LabelledReport.from_dict(r) for r in records]


def check_record(record: Mapping[str, Any], *, require_all_fields: bool = True) -> list[str]:
    """Return the problems of one corpus record (empty when it is fine)."""
    problems: list[str] = []
    required = RECORD_FIELDS if require_all_fields else {"id", "title", "description", "labels"}
    missing = required - record.keys()
    if missing:
        return [f"missing fields {sorted(missing)}"]
    text_fields = ("id", "title", "description", "reported_category", "reporting_unit")
    for name in text_fields if require_all_fields else ("id",):
        if not isinstance(record[name], str) or not record[name].strip():
            problems.append(f"{name} must be a non-empty string")
    if not require_all_fields:
        # Records built from adviser reviews may lack text, but never carry something else than text.
        problems.extend(f"{name} must be text" for name in text_fields[1:]
                        if record.get(name) is not None and not isinstance(record[name], str))
    labels = record["labels"]
    if not isinstance(labels, Mapping):
        return [*problems, "labels must be an object"]
    for key in ("samhandling", "barn_unge", "samhandling_barn_unge"):
        if not isinstance(labels.get(key), bool):
            problems.append(f"labels.{key} must be true/false")
    groups = labels.get("target_groups", [])
    services = labels.get("services", [])
    if not isinstance(groups, list) or not isinstance(services, list):
        return [*problems, "labels.target_groups and labels.services must be lists"]
    if unknown := set(groups) - set(TARGET_GROUPS):
        problems.append(f"unknown target groups {sorted(unknown)}")
    if unknown := set(services) - set(SERVICES):
        problems.append(f"unknown services {sorted(unknown)}")
    if len(set(groups)) != len(groups) or len(set(services)) != len(services):
        problems.append("duplicate codes in a label list")
    # A child/youth group implies barn_unge; barn_unge without one is a text about "barn" or "elever" that
    # gives no age (shared/domain.md: no age band is guessed, the report still concerns children).
    if CHILD_AND_YOUTH_GROUPS & set(groups) and labels.get("barn_unge") is not True:
        problems.append("barn_unge must be true when a child/youth target group is given")
    if labels.get("samhandling_barn_unge") != (labels.get("samhandling") and labels.get("barn_unge")):
        problems.append("samhandling_barn_unge must equal samhandling AND barn_unge")
    if record.get("language") not in (None, "nb", "nn"):
        problems.append("language must be 'nb' or 'nn'")
    return problems


def check_provenance(record: Mapping[str, Any]) -> list[str]:
    """Return the problems of a real-derived record's provenance: where it came from and when it was read."""
    missing = PROVENANCE_FIELDS - record.keys()
    if missing:
        return [f"real-derived record lacks {sorted(missing)}"]
    problems: list[str] = []
    url = record["source_url"]
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        problems.append("source_url must be an http(s) address")
    if not _is_iso_date(record["source_read_at"]):
        problems.append("source_read_at must be an ISO date (YYYY-MM-DD)")
    if not isinstance(record["source_id"], str) or not SOURCE_ID.fullmatch(record["source_id"]):
        problems.append("source_id must be a lower-case slug (a-z, 0-9, '-')")
    if not isinstance(record["source_kind"], str) or not record["source_kind"].strip():
        problems.append("source_kind must be a non-empty string")
    if record.get("language") not in ("nb", "nn"):
        problems.append("language must be given ('nb' or 'nn') in the real-derived track")
    return problems


def _is_iso_date(value: object) -> bool:
    """True for a calendar date written YYYY-MM-DD (fromisoformat alone also takes 20261206)."""
    if not isinstance(value, str) or len(value) != 10:
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def is_real_derived(path: str | Path) -> bool:
    """True for files of the real-derived track (those in a folder named real_derived)."""
    return Path(path).resolve().parent.name == REAL_DERIVED_DIR.name


def real_derived_paths() -> list[Path]:
    """The committed real-derived files, in a fixed order (not part of the default training corpus)."""
    return sorted(REAL_DERIVED_DIR.glob("*.jsonl"))


def validate_files(paths: Sequence[str | Path], out: Any = None, *, min_reports: int = 0,
                   min_sources: int = 0) -> int:
    """Print every problem and the label counts of corpus files; return 1 on any problem, else 0.

    Files of the real-derived track must also carry provenance, and together they must hold the shares
    (nynorsk, positives) and the minimum counts of reports and distinct sources asked for.
    """
    emit = (lambda line: print(line, file=out)) if out is not None else print
    seen: dict[str, str] = {}
    counts: Counter[str] = Counter()
    real: Counter[str] = Counter()
    sources: set[str] = set()
    failed = False
    for path in paths:
        derived = is_real_derived(path)
        for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                emit(f"{where}: not JSON: {exc}")
                failed = True
                continue
            if not isinstance(record, dict):
                emit(f"{where}: not a JSON object")
                failed = True
                continue
            problems = check_record(record)
            if derived:
                problems.extend(check_provenance(record))
            if record.get("id") in seen:
                problems.append(f"id {record['id']} also at {seen[record['id']]}")
            seen[record.get("id", "")] = where
            for problem in problems:
                emit(f"{where}: {problem}")
            failed |= bool(problems)
            if not problems:
                labels = record["labels"]
                counts["reports"] += 1
                counts[f"language={record.get('language', '?')}"] += 1
                counts["samhandling_barn_unge"] += labels["samhandling_barn_unge"]
                counts["samhandling only"] += labels["samhandling"] and not labels["barn_unge"]
                counts["barn_unge only"] += labels["barn_unge"] and not labels["samhandling"]
                counts["neither"] += not (labels["samhandling"] or labels["barn_unge"])
                if derived:
                    real["reports"] += 1
                    real["nynorsk"] += record["language"] == "nn"
                    real["positive"] += labels["samhandling_barn_unge"]
                    sources.add(record["source_id"])
    for key, value in sorted(counts.items()):
        emit(f"{key}: {value}")
    if real["reports"]:
        failed |= _check_real_derived_track(real, len(sources), emit, min_reports, min_sources)
    return 1 if failed else 0


def _check_real_derived_track(real: Counter[str], n_sources: int, emit: Any, min_reports: int,
                              min_sources: int) -> bool:
    """Print the real-derived track's figures and whether it holds its shares and counts; True on failure."""
    nynorsk = real["nynorsk"] / real["reports"]
    positive = real["positive"] / real["reports"]
    emit(f"real-derived: {real['reports']} reports from {n_sources} sources, "
         f"positive {positive:.1%}, nynorsk {nynorsk:.1%}")
    problems = []
    if nynorsk < MIN_NYNORSK_SHARE:
        problems.append(f"nynorsk share {nynorsk:.1%} is below {MIN_NYNORSK_SHARE:.0%}")
    low, high = POSITIVE_SHARE_RANGE
    if not low <= positive <= high:
        problems.append(f"positive share {positive:.1%} is outside {low:.0%}-{high:.0%}")
    if real["reports"] < min_reports:
        problems.append(f"{real['reports']} reports, fewer than {min_reports}")
    if n_sources < min_sources:
        problems.append(f"{n_sources} distinct sources, fewer than {min_sources}")
    for problem in problems:
        emit(f"real-derived: {problem}")
    return bool(problems)


def default_corpus_paths() -> list[Path]:
    """The committed corpus files, in a fixed order."""
    return sorted(CORPUS_DIR.glob("*.jsonl"))


def load_corpus(paths: Sequence[str | Path] | None = None) -> list[LabelledReport]:
    """Read corpus JSONL files (default: the committed corpus); raises CorpusError on any bad line."""
    chosen = [Path(p) for p in paths] if paths else default_corpus_paths()
    if not chosen:
        raise CorpusError(f"no corpus files found in {CORPUS_DIR}")
    records: list[LabelledReport] = []
    seen: set[str] = set()
    for path in chosen:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
                # A real-derived record's theme is its source, so leave-one-theme-out leaves one source out.
                theme = raw.get("source_id") if isinstance(raw, dict) else None
                record = LabelledReport.from_dict(raw, source=str(theme or path.stem))
            except (json.JSONDecodeError, CorpusError, TypeError, AttributeError) as exc:
                raise CorpusError(f"{path}:{number}: {exc}") from exc
            if record.id in seen:
                raise CorpusError(f"{path}:{number}: duplicate id {record.id}")
            seen.add(record.id)
            records.append(record)
    return records


def data_hash(records: Iterable[LabelledReport]) -> str:
    """SHA-256 of the training-relevant content, independent of record order."""
    lines = sorted(
        json.dumps(
            [r.id, r.title, r.description, r.reported_category, r.reporting_unit,
             r.labels.samhandling, r.labels.barn_unge, sorted(r.labels.target_groups), sorted(r.labels.services)],
            ensure_ascii=False,
        )
        for r in records
    )
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line.encode("utf-8") + b"\n")
    return digest.hexdigest()
