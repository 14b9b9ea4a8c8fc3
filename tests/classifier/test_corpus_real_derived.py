"""The real-derived corpus track: provenance on every record, its shares, and its place outside training."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from classifier.records import (
    REAL_DERIVED_DIR,
    check_provenance,
    check_record,
    default_corpus_paths,
    load_corpus,
    real_derived_paths,
    validate_files,
)

ROOT = Path(__file__).resolve().parents[2]


def _record(n: int, *, positive: bool = True, language: str = "nb", **changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": f"t-{n}", "title": "Ingen melding til helsestasjonen",
        "description": "Sykehuset sendte ingen epikrise etter fødselen.", "reported_category": "Annet",
        "reporting_unit": "Helsestasjonen", "language": language,
        "labels": {"samhandling": positive, "barn_unge": True, "samhandling_barn_unge": positive,
                   "target_groups": ["gravide_og_spedbarn"], "services": ["helsestasjon", "sykehus"]},
        "notes": "test", "source_id": f"src-{n % 5}", "source_kind": "tilsynsrapport",
        "source_url": "https://www.example.no/rapport", "source_read_at": "2026-12-06",
    }
    record.update(changes)
    return record


def _track(tmp_path: Path, records: list[dict[str, Any]]) -> Path:
    folder = tmp_path / "real_derived"
    folder.mkdir(exist_ok=True)
    path = folder / "track.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def _balanced(count: int = 10) -> list[dict[str, Any]]:
    """A track with 40 % positives and 30 % nynorsk, which holds the track's shares."""
    return [_record(i, positive=i % 5 < 2, language="nn" if i % 10 < 3 else "nb") for i in range(count)]


def _validate(paths: list[Path], **limits: int) -> tuple[int, str]:
    out = io.StringIO()
    code = validate_files(paths, out=out, **limits)
    return code, out.getvalue()


def test_committed_track_passes_the_validator_with_its_counts() -> None:
    paths = real_derived_paths()
    assert paths, "the real-derived track has no files"
    result = subprocess.run([sys.executable, "classifier/corpus/validate.py", "--min-reports", "400",
                             "--min-sources", "40", *map(str, paths)],
                            capture_output=True, text=True, cwd=ROOT, check=False)
    assert result.returncode == 0, result.stdout
    assert "real-derived:" in result.stdout and "sources" in result.stdout


def test_sources_table_matches_the_records() -> None:
    counts: dict[str, list[Any]] = {}
    for path in real_derived_paths():
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            row = counts.setdefault(record["source_id"], [record["source_kind"], 0, 0, record["source_url"]])
            assert row[3] == record["source_url"], f"{record['id']}: one source id, two addresses"
            row[1] += 1
            row[2] += record["labels"]["samhandling_barn_unge"]
    table = {}
    for line in (REAL_DERIVED_DIR / "SOURCES.md").read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) == 5 and cells[2].isdigit():
            table[cells[0]] = [cells[1], int(cells[2]), int(cells[3]), cells[4]]
    assert table == counts


def test_every_committed_record_names_its_source_and_reading_date() -> None:
    for path in real_derived_paths():
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            assert check_provenance(record) == [], record["id"]
            assert record["source_url"].startswith(("http://", "https://"))
            assert record["source_read_at"] == "2026-12-06"


def test_default_training_corpus_leaves_the_track_out() -> None:
    assert all(path.parent != REAL_DERIVED_DIR for path in default_corpus_paths())
    real_ids = {r.id for r in load_corpus(real_derived_paths())}
    assert real_ids and real_ids.isdisjoint({r.id for r in load_corpus()})


def test_track_theme_is_the_source_so_leave_one_theme_out_leaves_a_source_out() -> None:
    records = load_corpus(real_derived_paths())
    raw = {json.loads(line)["id"]: json.loads(line)["source_id"]
           for path in real_derived_paths() for line in path.read_text(encoding="utf-8").splitlines()}
    assert all(r.source == raw[r.id] for r in records)


@pytest.mark.parametrize(("change", "message"), [
    ({"source_url": "www.example.no/rapport"}, "source_url must be an http(s) address"),
    ({"source_url": "ftp://example.no/rapport"}, "source_url must be an http(s) address"),
    ({"source_read_at": "06.12.2026"}, "source_read_at must be an ISO date"),
    ({"source_read_at": "2026-13-06"}, "source_read_at must be an ISO date"),
    ({"source_read_at": "20261206"}, "source_read_at must be an ISO date"),
    ({"source_id": "Kilde 1"}, "source_id must be a lower-case slug"),
    ({"language": None}, "language must be given"),
])
def test_bad_provenance_is_named(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    records = _balanced()
    records[0].update(change)
    code, output = _validate([_track(tmp_path, records)])
    assert code == 1 and f"track.jsonl:1: {message}" in output


def test_missing_provenance_fails_only_in_the_track(tmp_path: Path) -> None:
    records = _balanced()
    del records[3]["source_url"]
    code, output = _validate([_track(tmp_path, records)])
    assert code == 1 and "lacks ['source_url']" in output and "track.jsonl:4" in output
    plain = tmp_path / "plain.jsonl"
    plain.write_text(json.dumps(records[3], ensure_ascii=False) + "\n", encoding="utf-8")
    assert _validate([plain])[0] == 0


def test_shares_and_counts_are_checked(tmp_path: Path) -> None:
    code, output = _validate([_track(tmp_path, _balanced())])
    assert code == 0 and "10 reports from 5 sources, positive 40.0%, nynorsk 30.0%" in output
    no_nynorsk = [dict(r, language="nb") for r in _balanced()]
    code, output = _validate([_track(tmp_path, no_nynorsk)])
    assert code == 1 and "nynorsk share 0.0% is below 20%" in output
    all_positive = [_record(i, language="nn") for i in range(10)]
    code, output = _validate([_track(tmp_path, all_positive)])
    assert code == 1 and "positive share 100.0% is outside 30%-50%" in output
    code, output = _validate([_track(tmp_path, _balanced())], min_reports=11, min_sources=6)
    assert code == 1 and "10 reports, fewer than 11" in output and "5 distinct sources, fewer than 6" in output


def test_children_without_an_age_need_no_target_group() -> None:
    record = _record(1, labels={"samhandling": True, "barn_unge": True, "samhandling_barn_unge": True,
                                "target_groups": [], "services": ["skole", "barnevern"]})
    assert check_record(record) == []
    record["labels"] = dict(record["labels"], barn_unge=False, samhandling_barn_unge=False,
                            target_groups=["barn_6_12"])
    assert "barn_unge must be true when a child/youth target group is given" in check_record(record)
