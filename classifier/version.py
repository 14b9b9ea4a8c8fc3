"""What identifies a model: the artifact format, the code and scikit-learn that built it, and its version string."""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1


def sklearn_version() -> str:
    """The installed scikit-learn's version, read from its metadata without importing it.

    Only training needs scikit-learn; prediction is numpy and scipy.sparse. Importing it (and the parts of
    scipy it pulls in) would cost every server process about 60 MB, so it is imported where models are fit.
    """
    return importlib.metadata.version("scikit-learn")


def code_hash() -> str:
    """SHA-256 of the package's Python sources: a model version changes when the code that made it does."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).resolve().parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def model_version(data_hash: str, seed: int, config: Mapping[str, Any], created: dt.datetime) -> str:
    """`YYYY.MM.DD-<hash>`: the hash covers the training data, seed, configuration, scikit-learn and code."""
    fingerprint = hashlib.sha256(
        json.dumps([data_hash, seed, config, sklearn_version(), code_hash()], sort_keys=True).encode()
    ).hexdigest()
    return f"{created:%Y.%m.%d}-{fingerprint[:8]}"
