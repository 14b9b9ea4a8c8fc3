"""No request ever trains a model: the default model is built and registered before serving (issue 13, item 1)."""

from __future__ import annotations

import ast
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from app.auth.keys import create_key
from app.auth.principal import Role
from app.cli import cli
from app.db import begin_session, make_engine, make_sessionmaker
from app.main import create_app
from app.migrate import upgrade
from app.registry.bootstrap import default_model
from app.registry.models import ModelVersion
from app.settings import Settings
from tests.conftest import DatabaseFactory, bearer, settings_for

APP = Path(__file__).resolve().parents[2] / "app"
MODEL_DIR = Path(Settings(_env_file=None).model_dir).resolve()
# The only modules that may build or register the default model: the CLI (`avvik serve`, `avvik model ensure`)
# and the bootstrap module it calls.
TRAINING_ALLOWED = {"app/cli/", "app/registry/bootstrap.py"}


def report(external_id: str) -> dict[str, object]:
    return {"external_id": external_id, "source_version": 1, "reported_at": "2026-03-03T10:00:00",
            "title": "Barnevernet fikk ikke melding fra skolen",
            "description": "Skolen meldte ikke bekymring til barnevernet, og helsesykepleier visste ikke om saken."}


@pytest.fixture
def fresh(databases: DatabaseFactory, monkeypatch: pytest.MonkeyPatch) -> tuple[str, dict[str, str]]:
    """A migrated database without any model, an integration key, and the CLI pointed at both."""
    default_model(MODEL_DIR)  # built once for the suite, as the Docker image builds it: these tests time serving
    url = databases.new()
    upgrade(url)
    engine = make_engine(url)
    with begin_session(make_sessionmaker(engine), writes=True) as session:
        _, key = create_key(session, "bootstrap-test", Role.ADMIN, None)
    engine.dispose()
    monkeypatch.setenv("AVVIK_DATABASE_URL", url)
    monkeypatch.setenv("AVVIK_MODEL_DIR", str(MODEL_DIR))
    return url, bearer(key)


def model_count(url: str) -> int:
    engine = make_engine(url)
    with engine.connect() as connection:
        n = connection.scalar(select(func.count()).select_from(ModelVersion)) or 0
    engine.dispose()
    return n


def test_a_delivery_without_a_model_is_stored_unscored_at_once_and_scored_later(
    fresh: tuple[str, dict[str, str]],
) -> None:
    url, headers = fresh
    with TestClient(create_app(settings_for(url, model_dir=str(MODEL_DIR))), headers=headers) as client:
        started = time.perf_counter()
        first = client.post("/api/v1/reports", json=report("FH-1"))
        elapsed = time.perf_counter() - started
        assert first.status_code == 201, first.text
        assert client.get(f"/api/v1/reports/{first.json()['id']}").json()["classification"] is None
        assert elapsed < 2.0
        assert model_count(url) == 0  # the request neither trained nor registered a model
        ensured = CliRunner().invoke(cli, ["model", "ensure"])
        assert ensured.exit_code == 0, ensured.output
        rescored = CliRunner().invoke(cli, ["rescore"])
        assert rescored.exit_code == 0 and "scored 1 reports" in rescored.output, rescored.output
        assert client.get(f"/api/v1/reports/{first.json()['id']}").json()["classification"] is not None
        second = client.post("/api/v1/reports", json=report("FH-2"))
        assert second.status_code == 201
        assert client.get(f"/api/v1/reports/{second.json()['id']}").json()["classification"] is not None


def test_after_the_start_up_step_the_first_delivery_is_scored_and_fast(fresh: tuple[str, dict[str, str]]) -> None:
    url, headers = fresh
    # What `avvik serve` (and `make run`, and the Docker image) does before the server binds.
    ensured = CliRunner().invoke(cli, ["model", "ensure"])
    assert ensured.exit_code == 0, ensured.output
    assert model_count(url) == 1
    with TestClient(create_app(settings_for(url, model_dir=str(MODEL_DIR))), headers=headers) as client:
        started = time.perf_counter()
        first = client.post("/api/v1/reports", json=report("FH-3"))
        elapsed = time.perf_counter() - started
        stored = client.get(f"/api/v1/reports/{first.json()['id']}").json()
    assert first.status_code == 201, first.text
    assert stored["classification"]["model_version"] == default_model(MODEL_DIR).version
    assert elapsed < 2.0


def _imports(path: Path) -> set[str]:
    """Every module and `module.name` a file imports."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def test_only_start_up_and_cli_code_can_train_or_register_the_default_model() -> None:
    # Which modules may import app.registry.bootstrap and app.cli is an import-linter contract (.importlinter,
    # tests/test_architecture.py); the classifier's training functions are names in one package, so they are
    # checked here.
    training = {"classifier.train", "classifier.ensure_default_model", "classifier.training.train",
                "classifier.artifacts.ensure_default_model"}
    offenders = {}
    for path in APP.rglob("*.py"):
        name = path.relative_to(APP.parent).as_posix()
        hits = _imports(path) & training
        if hits and not any(name == allowed or name.startswith(allowed) for allowed in TRAINING_ALLOWED):
            offenders[name] = sorted(hits)
    assert offenders == {}
