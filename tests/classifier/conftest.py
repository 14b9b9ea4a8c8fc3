"""Real models for the classifier tests: the default model is built once per session, from the corpus."""

from __future__ import annotations

from pathlib import Path

import pytest

from classifier import LabelledReport, TrainedModel, ensure_default_model, load_corpus
from classifier.evaluate import subsample


@pytest.fixture(scope="session")
def corpus() -> list[LabelledReport]:
    """The committed corpus."""
    return load_corpus()


@pytest.fixture(scope="session")
def small_corpus(corpus: list[LabelledReport]) -> list[LabelledReport]:
    """A fifth of the corpus from every theme: enough where the full one is not needed, and fast."""
    return subsample(corpus, 0.2, seed=1)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the session's default model lives."""
    return tmp_path_factory.mktemp("models") / "default"


@pytest.fixture(scope="session")
def model(model_dir: Path) -> TrainedModel:
    """The default model, built from the committed corpus the first time (as a fresh clone would)."""
    return ensure_default_model(model_dir)
