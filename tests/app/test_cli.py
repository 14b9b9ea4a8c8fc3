"""The `avvik` command as a user meets it: one line and an exit code for what the user can fix, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from app.auth.models import ApiKey
from app.cli import cli, metrics_table
from app.db import make_engine
from app.migrate import upgrade
from app.registry.bootstrap import default_model
from app.registry.models import ModelVersion
from app.settings import Settings
from tests.conftest import DatabaseFactory

MODEL_DIR = Path(Settings(_env_file=None).model_dir).resolve()


@pytest.fixture(scope="module")
def migrated(databases: DatabaseFactory) -> str:
    """A migrated database of this module's own, since these commands commit."""
    url = databases.new()
    upgrade(url)
    return url


@pytest.fixture
def use(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI reads its settings from the environment; the default model is the one the suite built."""
    default_model(MODEL_DIR)
    monkeypatch.setenv("AVVIK_MODEL_DIR", str(MODEL_DIR))


def run(url: str, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str]:
    monkeypatch.setenv("AVVIK_DATABASE_URL", url)
    result = CliRunner().invoke(cli, list(args))
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def one_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    return lines[0]


@pytest.mark.parametrize("args", [
    ["taxonomy", "list"], ["apikey", "list"], ["apikey", "create", "--name", "x", "--role", "admin"],
    ["model", "list"], ["model", "ensure"], ["rescore"], ["classify", "--input", "/dev/null"], ["serve"],
])
def test_an_unmigrated_database_says_run_migrate_in_one_line(
    args: list[str], databases: DatabaseFactory, monkeypatch: pytest.MonkeyPatch, use: None,
) -> None:
    code, output = run(databases.new(), monkeypatch, *args)
    assert code == 1
    assert one_line(output) == "Error: the database is not migrated: run `avvik migrate` (or `make run`)"


def test_a_missing_sqlite_file_is_not_created_by_a_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, output = run(f"sqlite:///{tmp_path}/var/avvik.db", monkeypatch, "taxonomy", "list")
    assert code == 1 and "run `avvik migrate`" in one_line(output)
    assert not (tmp_path / "var").exists()


@pytest.mark.parametrize(("args", "named"), [
    (["taxonomy", "list", "foo"], "'category', 'target_group', 'service', 'department', 'agency'"),
    (["taxonomy", "add", "shelf", "x", "X"], "'category', 'target_group', 'service', 'department', 'agency'"),
    (["taxonomy", "add", "department", "bku", "Kultur"], "upper-case letters and digits, like BBSM"),
    (["taxonomy", "add", "category", "BadCode", "X"], "lower-case letters, digits and _"),
    (["rescore", "--since", "32.01.2026"], "use YYYY-MM-DD or DD.MM.YYYY"),
    (["apikey", "create", "--name", "x", "--role", "superuser"], "'integration', 'adviser', 'dashboard', 'admin'"),
    (["apikey", "create", "--name", "x", "--role", "adviser", "--department", "NOPE"],
     "unknown department NOPE; known: BBS, BBSM, BEHO, BNKI"),
])
def test_a_bad_value_is_one_line_naming_the_valid_values_and_exit_2(
    args: list[str], named: str, migrated: str, monkeypatch: pytest.MonkeyPatch, use: None,
) -> None:
    code, output = run(migrated, monkeypatch, *args)
    assert code == 2
    assert named in one_line(output)
    engine = make_engine(migrated)
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(ApiKey).where(ApiKey.name == "x")) == 0
    engine.dispose()


def test_unlabelled_data_is_refused_by_evaluate(
    migrated: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, use: None,
) -> None:
    data = tmp_path / "unlabelled.jsonl"
    data.write_text(json.dumps({"id": "1", "title": "Møtet ble avlyst", "description": "Ingen kom."}) + "\n",
                    encoding="utf-8")
    code, output = run(migrated, monkeypatch, "model", "evaluate", "--data", str(data))
    assert code == 2
    assert "not labelled data" in one_line(output) and "labels" in output


def test_a_domain_error_is_one_line_and_exit_1(migrated: str, monkeypatch: pytest.MonkeyPatch, use: None) -> None:
    code, output = run(migrated, monkeypatch, "apikey", "revoke", "nobody")
    assert (code, one_line(output)) == (1, "Error: no key named 'nobody'")


def test_a_department_added_like_the_existing_ones_can_be_given_to_a_key(
    migrated: str, monkeypatch: pytest.MonkeyPatch, use: None,
) -> None:
    code, output = run(migrated, monkeypatch, "taxonomy", "add", "department", "BKU", "Byrådsavdeling for kultur")
    assert (code, output.strip()) == (0, "added department BKU")
    code, output = run(migrated, monkeypatch, "apikey", "create", "--name", "kultur-adviser", "--role", "adviser",
                       "--department", "BKU")
    assert code == 0 and output.startswith("avk_")


def test_rescore_accepts_a_norwegian_date(migrated: str, monkeypatch: pytest.MonkeyPatch, use: None) -> None:
    code, output = run(migrated, monkeypatch, "rescore", "--since", "01.01.2026")
    assert code == 0, output
    assert "scored 0 reports with" in output


def test_classify_and_model_list_on_a_fresh_database_register_the_default_model(
    databases: DatabaseFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, use: None,
) -> None:
    version = default_model(MODEL_DIR).version
    for command in (["model", "list"], ["classify", "--input", str(tmp_path / "in.jsonl")]):
        url = databases.new()
        upgrade(url)
        (tmp_path / "in.jsonl").write_text(json.dumps({"id": "a", "title": "Fall", "description": "Falt."}) + "\n",
                                           encoding="utf-8")
        code, output = run(url, monkeypatch, *command)
        assert code == 0, output
        assert f"registered and activated the default model {version}" in output
        assert "no model version" not in output
        if command[0] == "model":
            assert f"* {version}" in output
        else:
            prediction = next(line for line in output.splitlines() if line.startswith("{"))
            assert json.loads(prediction)["model_version"] == version


def test_model_metrics_are_a_table() -> None:
    table = metrics_table(default_model(MODEL_DIR).metrics["cv"])
    lines = table.splitlines()
    assert lines[0].startswith("cross-validated (") and len(lines) == 10
    assert all(len(line) < 80 for line in lines)
    assert lines[1].split()[:2] == ["flag", "precision"] and "{" not in table


def test_model_ensure_registers_once(databases: DatabaseFactory, monkeypatch: pytest.MonkeyPatch, use: None) -> None:
    url = databases.new()
    upgrade(url)
    first = run(url, monkeypatch, "model", "ensure")
    again = run(url, monkeypatch, "model", "ensure")
    version = default_model(MODEL_DIR).version
    assert first == (0, f"no model was active: registered and activated the default model {version}\n"
                        f"{version} is active\n")
    assert again == (0, f"{version} is active\n")
    engine = make_engine(url)
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(ModelVersion)) == 1
    engine.dispose()


def test_a_database_behind_the_code_says_which_revisions(
    databases: DatabaseFactory, monkeypatch: pytest.MonkeyPatch, use: None,
) -> None:
    url = databases.new()
    upgrade(url, "0008")
    code, output = run(url, monkeypatch, "taxonomy", "list")
    assert code == 1
    assert one_line(output).startswith("Error: the database is at revision 0008")
    assert output.rstrip().endswith("run `avvik migrate`")


def test_an_unreachable_database_is_one_line_without_its_password(monkeypatch: pytest.MonkeyPatch) -> None:
    code, output = run("postgresql+psycopg://postgres:secret@127.0.0.1:1/avvik", monkeypatch, "apikey", "list")
    assert code == 1
    assert one_line(output).startswith("Error: cannot reach the database postgresql+psycopg://postgres:***@")
    assert "secret" not in output
