"""The command line end to end, the corpus validator script, and the package's import boundary."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from classifier import LabelledReport, TrainedModel
from classifier.cli import app, classify_command, model_app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def _write_jsonl(path: Path, records: list[LabelledReport]) -> Path:
    path.write_text("".join(json.dumps(r.to_dict(), ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("train", "evaluate", "classify"):
        assert command in result.output
    assert callable(classify_command)
    assert {c.name for c in model_app.registered_commands} == {"train", "evaluate"}


def test_train_then_evaluate(small_corpus: list[LabelledReport], tmp_path: Path) -> None:
    by_theme: dict[str, list[LabelledReport]] = {}
    for r in small_corpus:
        by_theme.setdefault(r.source, []).append(r)
    files = [_write_jsonl(tmp_path / f"{theme}.jsonl", records) for theme, records in sorted(by_theme.items())]
    corpus_args = [arg for f in files for arg in ("--corpus", str(f))]

    trained = runner.invoke(app, ["train", *corpus_args, "--out", str(tmp_path / "model")])
    assert trained.exit_code == 0, trained.output
    assert "leave-one-theme-out" in trained.output and (tmp_path / "model" / "meta.json").exists()

    evaluated = runner.invoke(app, ["evaluate", "--data", str(files[0]), "--model", str(tmp_path / "model"),
                                    "--json", str(tmp_path / "report.json")])
    assert evaluated.exit_code == 0, evaluated.output
    assert "keyword baseline" in evaluated.output and "5% prevalence" in evaluated.output
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert report["samhandling_barn_unge"]["confusion"].keys() == {"tp", "fp", "fn", "tn"}


def test_classify_survives_bad_lines(model: TrainedModel, model_dir: Path, tmp_path: Path) -> None:
    lines = [
        json.dumps({"id": "ok1", "title": "Ingen tilbakemelding", "description": "Barnevernet svarte ikke barnehagen.",
                    "reported_category": "Informasjonsplikt"}),
        "{not json",
        json.dumps({"id": "no-text", "title": "bare tittel"}),
        "",
        json.dumps(["a", "list"]),
        json.dumps({"id": 7, "title": "", "description": "  "}),
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = runner.invoke(app, ["classify", "--input", str(source), "--output", str(tmp_path / "out.jsonl"),
                                 "--model", str(model_dir)])
    assert result.exit_code == 0, result.output
    out = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [o.get("id") for o in out] == ["ok1", None, "no-text", None, "7"]
    assert [o["line"] for o in out if "error" in o] == [2, 3, 5]
    assert out[0]["model_version"] == model.version and isinstance(out[0]["flagged"], bool)
    assert set(out[0]) == {"id", "score", "flagged", "target_groups", "services", "explanation", "model_version"}


def test_classify_reads_stdin_and_uses_env_model_dir(model_dir: Path, model: TrainedModel,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AVVIK_MODEL_DIR", str(model_dir))
    line = json.dumps({"id": "x", "title": "Fall", "description": "Gutt falt i skolegården."})
    result = runner.invoke(app, ["classify"], input=line + "\n")
    assert result.exit_code == 0
    assert json.loads(result.stdout.splitlines()[0])["id"] == "x"


def test_python_dash_m_runs() -> None:
    result = subprocess.run([sys.executable, "-m", "classifier", "--help"], capture_output=True, text=True,
                            cwd=ROOT, check=False)
    assert result.returncode == 0 and "classify" in result.stdout


def test_validate_script_still_works(small_corpus: list[LabelledReport], tmp_path: Path) -> None:
    good = _write_jsonl(tmp_path / "good.jsonl", small_corpus[:5])
    result = subprocess.run([sys.executable, "classifier/corpus/validate.py", str(good)], capture_output=True,
                            text=True, cwd=ROOT, check=False)
    assert result.returncode == 0 and "reports: 5" in result.stdout
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x"}\nnot json\n', encoding="utf-8")
    result = subprocess.run([sys.executable, "classifier/corpus/validate.py", str(bad)], capture_output=True,
                            text=True, cwd=ROOT, check=False)
    assert result.returncode == 1 and "bad.jsonl:2: not JSON" in result.stdout
