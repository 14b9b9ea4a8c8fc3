"""Save and load models as plain arrays and JSON: nothing in an artifact names a type or runs on load.

Layout of an artifact directory: arrays.npz (numbers only, loaded with allow_pickle=False), vocab.json
(lists of strings), meta.json (version, data hash, threshold, metrics, versions, file checksums; last).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from classifier.features import FeatureSpace
from classifier.model import LABELS, MAIN_HEADS, MODES, Config, TrainedModel
from classifier.records import load_corpus
from classifier.training import train
from classifier.version import FORMAT_VERSION

REBUILD_HINT = "rebuild it with `python -m classifier train --out DIR` (or `make model` for the default model)"
ARRAYS = "arrays.npz"
VOCAB = "vocab.json"
META = "meta.json"
_ARRAY_NAMES = ("idf", "weights", "intercepts", "stacker", "label_thresholds")


class ArtifactError(RuntimeError):
    """A model artifact that is missing, damaged, or built for another version; the message says what to do."""


def save(model: TrainedModel, directory: Path) -> Path:
    """Write the model into `directory` (created if needed) and return the directory."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    features = model.features

    def write_arrays(f: BinaryIO) -> None:
        np.savez_compressed(
            f, idf=features.idf.astype(np.float64), weights=model.weights.astype(np.float32),
            intercepts=model.intercepts.astype(np.float64), stacker=model.stacker.astype(np.float64),
            label_thresholds=model.label_thresholds.astype(np.float64),
        )

    vocab = {"char": _ordered(features.char_vocab), "word": _ordered(features.word_vocab),
             "meta": _ordered(features.meta_vocab)}
    _atomic_write(directory / ARRAYS, write_arrays)
    _atomic_write(directory / VOCAB, lambda f: f.write(json.dumps(vocab, ensure_ascii=False).encode("utf-8")))
    meta = {
        "format_version": FORMAT_VERSION,
        "version": model.version,
        "created_at": model.created_at,
        "sklearn_version": model.sklearn_version,
        "numpy_version": np.__version__,
        "training_data_hash": model.training_data_hash,
        "threshold": model.threshold,
        "threshold_target": model.metrics.get("threshold_target"),
        "prevalence": model.config.prevalence,
        "train_prevalence": model.train_prevalence,
        "main_heads": list(MAIN_HEADS),
        "labels": list(LABELS),
        "label_modes": list(model.label_modes),
        "config": asdict(model.config),
        "metrics": model.metrics,
        "files": {name: _sha256(directory / name) for name in (ARRAYS, VOCAB)},
    }
    # meta.json goes last: a directory without it is not a model, so a crash midway leaves no half model.
    _atomic_write(directory / META, lambda f: f.write(json.dumps(meta, indent=2, ensure_ascii=False).encode()))
    return directory


def load(directory: Path) -> TrainedModel:
    """Load a model saved by `save`; raise ArtifactError if it is missing, altered, or of another format.

    The scikit-learn that trained it is recorded, not checked: prediction reads plain arrays with numpy and
    scipy and never calls scikit-learn, so a model predicts the same under any of its versions.
    """
    directory = Path(directory)
    meta = _read_json(directory / META, "model metadata")
    if not isinstance(meta, dict):
        raise ArtifactError(f"{directory / META} is not a JSON object; {REBUILD_HINT}")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(f"{directory} has artifact format {meta.get('format_version')!r}, this code reads "
                            f"{FORMAT_VERSION}; {REBUILD_HINT}")
    files = meta.get("files") or {}
    for name in (ARRAYS, VOCAB):
        path = directory / name
        if not path.is_file():
            raise ArtifactError(f"{path} is missing; {REBUILD_HINT}")
        if files.get(name) != _sha256(path):
            raise ArtifactError(f"{path} does not match the checksum in {META}; {REBUILD_HINT}")
    arrays = _read_arrays(directory / ARRAYS)
    vocab = _read_json(directory / VOCAB, "vocabulary")
    return _assemble(directory, meta, arrays, vocab)


def ensure_default_model(directory: Path) -> TrainedModel:
    """Load the model in `directory`, or train it from the committed corpus and save it there first."""
    directory = Path(directory)
    if (directory / META).exists():
        return load(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with _exclusive(directory / ".lock"):
        # Another process may have built it while we waited for the lock.
        if (directory / META).exists():
            return load(directory)
        save(train(load_corpus()), directory)
    return load(directory)


def _assemble(directory: Path, meta: dict[str, Any], arrays: dict[str, np.ndarray], vocab: Any) -> TrainedModel:
    try:
        if not (isinstance(vocab, dict) and all(
                isinstance(vocab.get(k), list) and all(isinstance(t, str) for t in vocab[k])
                for k in ("char", "word", "meta"))):
            raise ValueError("vocabulary must hold three lists of strings")
        if meta.get("labels") != list(LABELS) or meta.get("main_heads") != list(MAIN_HEADS):
            raise ValueError("label set differs from this code")
        modes = meta.get("label_modes")
        if not (isinstance(modes, list) and len(modes) == len(LABELS) and all(m in MODES for m in modes)):
            raise ValueError("label_modes invalid")
        known = {f.name for f in fields(Config)}
        raw = {k: v for k, v in (meta.get("config") or {}).items() if k in known}
        if "block_weights" in raw:
            raw["block_weights"] = tuple(float(w) for w in raw["block_weights"])
        config = Config(**raw)
        features = FeatureSpace(
            char_vocab={t: i for i, t in enumerate(vocab["char"])},
            word_vocab={t: i for i, t in enumerate(vocab["word"])},
            meta_vocab={t: i for i, t in enumerate(vocab["meta"])},
            idf=arrays["idf"], block_weights=config.block_weights, min_df=config.min_df,
        )
        n_heads = len(MAIN_HEADS) + len(LABELS)
        expected = {"idf": (features.n_features,), "weights": (features.n_features, n_heads),
                    "intercepts": (n_heads,), "stacker": (len(MAIN_HEADS) + 1,), "label_thresholds": (len(LABELS),)}
        for name, shape in expected.items():
            if arrays[name].shape != shape:
                raise ValueError(f"{name} has shape {arrays[name].shape}, expected {shape}")
        return TrainedModel(
            features=features, weights=arrays["weights"], intercepts=arrays["intercepts"],
            stacker=arrays["stacker"], label_thresholds=arrays["label_thresholds"], label_modes=list(modes),
            threshold=float(meta["threshold"]), train_prevalence=float(meta["train_prevalence"]), config=config,
            version=str(meta["version"]), training_data_hash=str(meta["training_data_hash"]),
            metrics=dict(meta.get("metrics") or {}), created_at=str(meta["created_at"]),
            sklearn_version=str(meta["sklearn_version"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"{directory} is not a valid model artifact ({exc}); {REBUILD_HINT}") from exc


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    try:
        # allow_pickle=False: an object array (the only way an .npy can carry code) is refused, not run.
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in _ARRAY_NAMES}
    except (ValueError, KeyError, OSError, EOFError) as exc:
        raise ArtifactError(f"{path} cannot be read safely ({exc}); {REBUILD_HINT}") from exc
    for name, array in arrays.items():
        if array.dtype.kind != "f":
            raise ArtifactError(f"{path}: {name} must hold floats, not {array.dtype}; {REBUILD_HINT}")
    return arrays


def _read_json(path: Path, what: str) -> Any:
    if not path.is_file():
        raise ArtifactError(f"no {what} at {path}; {REBUILD_HINT}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path} is not valid JSON ({exc}); {REBUILD_HINT}") from exc


def _ordered(vocab: dict[str, int]) -> list[str]:
    out = [""] * len(vocab)
    for term, j in vocab.items():
        out[j] = term
    return out


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive file lock where the platform has one (two workers must not train at once)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock, the atomic writes still keep files whole
        yield
        return
    with open(lock_path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
