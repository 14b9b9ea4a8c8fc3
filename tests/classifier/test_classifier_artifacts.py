"""Saved models: round trip, refusal of other versions and altered files, and no code run on load."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from classifier import ArtifactError, LabelledReport, TrainedModel, ensure_default_model, load, save


class _RunsCode:
    """Pickles to a call of os.system: what a malicious artifact would carry."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (self.command,))


def _copy(model_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(model_dir, target)
    return target


def _rewrite_meta(directory: Path, **changes: object) -> None:
    meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
    meta.update(changes)
    (directory / "meta.json").write_text(json.dumps(meta), encoding="utf-8")


def test_round_trip_gives_identical_predictions(
    model: TrainedModel, corpus: list[LabelledReport], tmp_path: Path
) -> None:
    save(model, tmp_path / "m")
    loaded = load(tmp_path / "m")
    reports = [r.text for r in corpus[:200]]
    assert [p.to_dict() for p in loaded.predict(reports)] == [p.to_dict() for p in model.predict(reports)]
    assert (loaded.version, loaded.threshold, loaded.training_data_hash) == (
        model.version, model.threshold, model.training_data_hash)
    assert loaded.metrics == json.loads(json.dumps(model.metrics))


def test_meta_records_what_a_reviewer_needs(model_dir: Path, model: TrainedModel) -> None:
    meta = json.loads((model_dir / "meta.json").read_text(encoding="utf-8"))
    for key in ("version", "training_data_hash", "threshold", "threshold_target", "metrics", "sklearn_version",
                "created_at", "files"):
        assert key in meta
    assert meta["version"] == model.version


def test_default_model_is_loaded_once_built(model_dir: Path, model: TrainedModel) -> None:
    again = ensure_default_model(model_dir)
    assert again.version == model.version


def test_a_model_built_under_another_sklearn_predicts_the_same(
    model_dir: Path, model: TrainedModel, corpus: list[LabelledReport], tmp_path: Path
) -> None:
    # Prediction never calls scikit-learn: the version that trained a model is provenance, not a condition.
    copy = _copy(model_dir, tmp_path)
    _rewrite_meta(copy, sklearn_version="0.0.1")
    loaded = load(copy)
    reports = [r.text for r in corpus[:50]]
    assert loaded.sklearn_version == "0.0.1"
    assert [p.to_dict() for p in loaded.predict(reports)] == [p.to_dict() for p in model.predict(reports)]


def test_missing_model_is_an_artifact_error(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="make model"):
        load(tmp_path / "nothing")


def test_altered_arrays_fail_the_checksum(model_dir: Path, tmp_path: Path) -> None:
    copy = _copy(model_dir, tmp_path)
    with (copy / "arrays.npz").open("ab") as f:
        f.write(b"\0")
    with pytest.raises(ArtifactError, match="checksum"):
        load(copy)


def test_artifact_with_code_is_refused_and_runs_nothing(model_dir: Path, tmp_path: Path) -> None:
    copy = _copy(model_dir, tmp_path)
    sentinel = tmp_path / "pwned"
    with np.load(copy / "arrays.npz", allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    arrays["weights"] = np.array([_RunsCode(f"touch {sentinel}")], dtype=object)
    np.savez(copy / "arrays.npz", **arrays)  # pickles the object array, as an attacker would
    # The attacker also fixes the checksum, so that only the loader itself stands in the way.
    digest = hashlib.sha256((copy / "arrays.npz").read_bytes()).hexdigest()
    meta = json.loads((copy / "meta.json").read_text(encoding="utf-8"))
    meta["files"]["arrays.npz"] = digest
    (copy / "meta.json").write_text(json.dumps(meta), encoding="utf-8")

    with pytest.raises(ArtifactError, match="cannot be read safely"):
        load(copy)
    assert not sentinel.exists()


def test_vocabulary_must_be_plain_strings(model_dir: Path, tmp_path: Path) -> None:
    copy = _copy(model_dir, tmp_path)
    vocab = json.loads((copy / "vocab.json").read_text(encoding="utf-8"))
    vocab["meta"][0] = {"__class__": "os.system"}
    (copy / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    meta = json.loads((copy / "meta.json").read_text(encoding="utf-8"))
    meta["files"]["vocab.json"] = hashlib.sha256((copy / "vocab.json").read_bytes()).hexdigest()
    (copy / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(ArtifactError, match="lists of strings"):
        load(copy)
