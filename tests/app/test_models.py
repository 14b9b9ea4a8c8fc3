"""Learning from advisers end to end: flag, review, retrain with feedback, promote, rescore, count.

These tests commit (the CLI runs its own transactions), so each uses a database of its own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from app.auth.keys import create_key
from app.auth.principal import Role
from app.cli import cli
from app.db import make_engine, make_sessionmaker
from app.main import create_app
from app.migrate import upgrade
from app.registry import service as registry
from app.registry.bootstrap import default_model
from app.registry.models import RescoreRun
from classifier import load_corpus, train
from tests.conftest import DatabaseFactory, bearer, settings_for

DEV_SET = Path(__file__).resolve().parents[3] / "shared" / "data" / "dev-set.jsonl"


@pytest.fixture
def fresh(databases: DatabaseFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, TestClient]]:
    """A migrated database of its own with the default model active, an admin client, and the CLI pointed at it."""
    url = databases.new()
    upgrade(url)
    engine = make_engine(url)
    with make_sessionmaker(engine).begin() as session:
        model = default_model(settings_for(url).model_dir)
        registry.register(session, model, source="corpus")
        registry.activate_if_none(session, model.version, by="tests")
        _, key = create_key(session, "e2e-admin", Role.ADMIN, None)
    engine.dispose()
    monkeypatch.setenv("AVVIK_DATABASE_URL", url)
    with TestClient(create_app(settings_for(url, audit_sample_share=0.05)), headers=bearer(key)) as client:
        yield url, client


def dev_reports() -> list[dict[str, Any]]:
    if not DEV_SET.exists():
        pytest.skip(f"the development set is not beside the repository ({DEV_SET})")
    return [json.loads(line) for line in DEV_SET.read_text(encoding="utf-8").splitlines() if line.strip()]


def count(client: TestClient, **params: Any) -> int:
    total, cursor = 0, None
    while True:
        page = client.get("/api/v1/reports", params={**params, "limit": 500, **({"cursor": cursor} if cursor else {})})
        assert page.status_code == 200, page.text
        total += len(page.json()["items"])
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return total


def test_flag_review_retrain_promote_rescore_and_count(fresh: tuple[str, TestClient]) -> None:
    _, client = fresh
    gold = {r["id"]: r["labels"]["samhandling_barn_unge"] for r in dev_reports()}
    untagged = [{"external_id": r["id"], "source_system": "devset", "title": r["title"],
                 "description": r["description"], "reported_category": r["reported_category"],
                 "reporting_unit": r["reporting_unit"], "reported_at": "2026-05-01T12:00:00", "source_version": 1}
                for r in dev_reports()]
    answer = client.post("/api/v1/reports/batch", json={"reports": untagged})
    assert answer.json()["counts"] == {"created": len(untagged)}
    ids = {r["external_id"]: r["id"] for r in answer.json()["results"]}

    category = {"category": "samhandling_barn_unge"}
    confirmed_before = count(client, **category)
    suggested_before = count(client, **category, include_suggested=True)
    assert confirmed_before == 0 and suggested_before >= 20  # flagged, not yet counted officially

    queue = client.get("/api/v1/review-queue", params={"limit": 40}).json()["items"]
    decisions = {}
    for item in queue:
        external = item["report"]["external_id"]
        decision = "confirm" if gold[external] else "reject"
        decisions[external] = decision
        assert client.post(f"/api/v1/reports/{item['report']['id']}/review",
                           json={"decision": decision}).status_code == 201
    confirmed_now = sum(d == "confirm" for d in decisions.values())
    assert count(client, **category) == confirmed_now
    assert count(client, **category, provenance="adviser") == confirmed_now

    quality = client.get("/api/v1/models/active/quality").json()
    flagged_reviews = sum(1 for i in queue if i["report"]["flagged"])
    assert quality["overall"]["reviewed_flags"] == flagged_reviews
    assert quality["overall"]["precision"] is not None and quality["overall"]["precision"] > 0.6

    estimate = client.get("/api/v1/stats/estimate").json()
    assert estimate["confirmed"] == confirmed_now
    low, high = estimate["interval_95"]
    assert low <= estimate["estimated_total"] <= high
    assert low <= sum(gold.values()) <= high  # the truth of this data set

    runner = CliRunner()
    trained = runner.invoke(cli, ["model", "train", "--with-feedback"])
    assert trained.exit_code == 0, trained.output
    candidate = trained.output.split("registered ")[1].split()[0]
    promoted = runner.invoke(cli, ["model", "promote", candidate, "--dev-set", str(DEV_SET)])
    assert promoted.exit_code == 0, promoted.output
    models = client.get("/api/v1/models").json()
    assert [m["version"] for m in models if m["active"]] == [candidate]
    assert next(m for m in models if m["version"] == candidate)["feedback_count"] > 0

    assert runner.invoke(cli, ["rescore", "--batch", "50"]).exit_code == 0
    client.app.state.models.invalidate()
    detail = client.get(f"/api/v1/reports/{ids[next(iter(decisions))]}").json()
    assert detail["classification"]["model_version"] == candidate
    assert detail["confirmed_category_provenance"] == "adviser"  # rescoring never touches decisions
    assert count(client, **category) == confirmed_now
    assert count(client, **category, include_suggested=True) >= confirmed_now


def test_promotion_is_refused_for_a_worse_model(fresh: tuple[str, TestClient]) -> None:
    url, _ = fresh
    if not DEV_SET.exists():
        pytest.skip("the development set is not beside the repository")
    weak = train(load_corpus()[:60], cross_validate=False)
    engine = make_engine(url)
    with make_sessionmaker(engine).begin() as session:
        registry.register(session, weak, source="corpus")
    engine.dispose()
    runner = CliRunner()
    refused = runner.invoke(cli, ["model", "promote", weak.version, "--dev-set", str(DEV_SET)])
    assert refused.exit_code == 1
    assert "worse" in refused.output
    assert runner.invoke(cli, ["model", "list"]).output.count("*") == 1
    forced = runner.invoke(cli, ["model", "promote", weak.version, "--dev-set", str(DEV_SET), "--force"])
    assert forced.exit_code == 0, forced.output


def test_rescore_resumes_after_an_interruption(fresh: tuple[str, TestClient]) -> None:
    from zoneinfo import ZoneInfo

    from app.registry.rescore import rescore
    from tests.helpers import report

    url, client = fresh
    client.post("/api/v1/reports/batch", json={"reports": [report(f"RS-{n}") for n in range(7)]})
    engine = make_engine(url)
    maker = make_sessionmaker(engine)

    class Interrupted(Exception):
        pass

    def stop_after_first_batch(n: int) -> None:
        raise Interrupted

    with pytest.raises(Interrupted):
        rescore(maker, None, None, ZoneInfo("Europe/Oslo"), batch=3, progress=stop_after_first_batch)
    with maker() as session:
        (run,) = session.scalars(select(RescoreRun)).all()
        assert (run.scored, run.finished_at) == (3, None)
    finished = rescore(maker, None, None, ZoneInfo("Europe/Oslo"), batch=3)
    assert (finished.id, finished.scored) == (run.id, 7)
    assert finished.finished_at is not None
    engine.dispose()


def test_rescore_skips_a_report_the_classifier_fails_on_and_keeps_its_score(
        fresh: tuple[str, TestClient], monkeypatch: pytest.MonkeyPatch) -> None:
    from zoneinfo import ZoneInfo

    from app.registry.rescore import rescore
    from app.report.models import ReportScore
    from tests.helpers import POISON, inject_classifier_fault, report

    url, client = fresh
    items = [report(f"RF-{n}") for n in range(5)]
    items[2]["description"] += " " + POISON
    answer = client.post("/api/v1/reports/batch", json={"reports": items}).json()
    poisoned = answer["results"][2]["id"]
    inject_classifier_fault(monkeypatch)  # after ingest scored every report
    engine = make_engine(url)
    maker = make_sessionmaker(engine)
    with maker() as session:
        before = session.get(ReportScore, poisoned)
        assert before is not None
        scored_at = before.scored_at
    run = rescore(maker, None, None, ZoneInfo("Europe/Oslo"), batch=10)
    assert (run.scored, run.finished_at is not None) == (4, True)
    with maker() as session:
        kept = session.get(ReportScore, poisoned)
        assert kept is not None and kept.scored_at == scored_at  # the ingest-time score, untouched
        others = session.scalars(select(ReportScore).where(ReportScore.report_id != poisoned)).all()
        assert len(others) == 4 and all(s.scored_at > scored_at for s in others)
    engine.dispose()


def test_classify_command_uses_the_active_model_and_survives_bad_lines(
        fresh: tuple[str, TestClient], tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join([
        json.dumps({"id": "a", "title": "Ingen tilbakemelding fra barnevernet",
                    "description": "Skolen sendte bekymringsmelding om eleven (9) for tre uker siden og har "
                                   "ikke hørt noe fra barneverntjenesten.",
                    "reported_category": "Annet"}, ensure_ascii=False),
        "not json",
        json.dumps({"id": "b", "title": "Strømbrudd", "description": "Kaffemaskinen virket ikke."}),
    ]), encoding="utf-8")
    target = tmp_path / "out.jsonl"
    result = CliRunner().invoke(cli, ["classify", "--input", str(source), "--output", str(target)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert [line.get("id") for line in lines] == ["a", None, "b"]
    assert lines[1] == {"line": 2, "error": lines[1]["error"]} and "JSON" in lines[1]["error"]
    engine = make_engine(fresh[0])
    with make_sessionmaker(engine)() as session:
        active = registry.active_version(session)
    engine.dispose()
    assert {lines[0]["model_version"], lines[2]["model_version"]} == {active}
    assert lines[0]["flagged"] and not lines[2]["flagged"]
    assert "barnevern" in lines[0]["services"]
    missing = CliRunner().invoke(cli, ["classify", "--input", str(source), "--model", "no-such-version"])
    assert missing.exit_code == 2 and "no model version no-such-version" in missing.output
