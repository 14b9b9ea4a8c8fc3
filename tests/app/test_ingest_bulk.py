"""Ingest writes each report once, in few round trips, and every path stores the same result.

Batches of many reports go through COPY on PostgreSQL and small ones through one pipelined statement:
these tests hold every path to the same stored result, and to the same error answers as plain SQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.auth.keys import create_key
from app.auth.models import ApiKey
from app.auth.principal import Role
from app.db import make_sessionmaker
from app.ingest.bulk import COPY_MIN_ROWS, BulkWriter
from app.main import create_app
from app.report.models import Report, ReportTargetGroup
from tests.conftest import bearer, settings_for
from tests.helpers import delivered, report

FLAGGED = {
    "title": "Helsesykepleier fikk ikke beskjed om ny elev",
    "description": "Ny elev i 4. klasse med diabetes startet 3. mars. Skolen sendte ingen melding til "
                   "skolehelsetjenesten, og helsesykepleier fikk først vite det tre uker senere da mor ringte.",
    "reported_category": "Tjenesteutøvelse",
    "target_groups": [],
    "services_involved": [],
}
# What differs between two stored copies of one delivery besides its identity and the clock.
VOLATILE = {"id", "source_system", "created_at", "updated_at", "outcome"}


def read(client: TestClient, report_id: int) -> dict[str, Any]:
    answer = client.get(f"/api/v1/reports/{report_id}")
    assert answer.status_code == 200, answer.text
    return answer.json()


def comparable(stored: dict[str, Any]) -> dict[str, Any]:
    body = {k: v for k, v in stored.items() if k not in VOLATILE}
    if body.get("classification"):
        body["classification"] = {k: v for k, v in body["classification"].items() if k != "scored_at"}
    return body


def deliveries(source: str, n: int) -> list[dict[str, Any]]:
    """Varied deliveries: flagged and not, codes sent or left to the classifier, links, text units."""
    out = []
    for i in range(n):
        extra: dict[str, Any] = dict(FLAGGED) if i % 3 == 0 else {}
        if i % 4 == 1:
            extra["reporting_unit"] = "Etat for skole – Garnes skole"
        if i % 5 == 2:
            extra["related_external_ids"] = [f"REL-{i}", "REL-0"]
        if i % 7 == 3:
            extra["description"] = "Mor kan nås på 912 34 567 etter klokka 15."
        out.append(report(f"BULK-{i:03d}", source_system=source, source_version=i + 1, **extra))
    return out


def test_a_delivery_stores_its_score_and_an_update_keeps_the_advisers_labels(client: TestClient) -> None:
    created = client.post("/api/v1/reports", json=report(**FLAGGED))
    assert created.status_code == 201
    body = {**created.json(), **read(client, created.json()["id"])}
    assert body["flagged"] is True and body["labels"]

    # After an adviser's decision an update is labelled by it; the answer shows that too.
    assert client.post(f"/api/v1/reports/{body['id']}/review",
                       json={"decision": "correct", "target_groups": ["ungdom_13_17"]}).status_code in (200, 201)
    updated = client.post("/api/v1/reports", json=report(body["external_id"], **{**FLAGGED, "source_version": 2,
                                                                                  "status": "lukket"}))
    assert updated.status_code == 200 and updated.json()["outcome"] == "updated"
    stored = read(client, body["id"])
    assert {(x["code"], x["provenance"]) for x in stored["labels"] if x["dimension"] == "target_group"} \
        == {("ungdom_13_17", "adviser")}

    replay = client.post("/api/v1/reports", json=report(body["external_id"], **{**FLAGGED, "source_version": 2,
                                                                                 "status": "lukket"}))
    assert replay.json()["outcome"] == "unchanged"
    assert read(client, body["id"]) == stored


def test_with_scoring_off_reports_are_stored_unscored(make_app: Callable[..., FastAPI],
                                                      api_keys: dict[Role, str]) -> None:
    with TestClient(make_app(scoring_enabled=False), headers=bearer(api_keys[Role.ADMIN])) as client:
        created = delivered(client, report(**FLAGGED))
        assert created["classification"] is None and created["flagged"] is False
        updated = delivered(client, report(created["external_id"], source_version=2))
        assert updated["outcome"] == "updated" and updated["classification"] is None


@pytest.mark.parametrize("n", [COPY_MIN_ROWS - 1, COPY_MIN_ROWS + 9])
def test_a_batch_stores_what_single_deliveries_store(client: TestClient, n: int) -> None:
    # Below COPY_MIN_ROWS a batch takes the pipelined path, from it on COPY (on PostgreSQL).
    batch = client.post("/api/v1/reports/batch", json={"reports": deliveries("bulk-batch", n)})
    assert batch.status_code == 200 and batch.json()["counts"] == {"created": n}
    singles = [client.post("/api/v1/reports", json=d) for d in deliveries("bulk-single", n)]
    assert {s.status_code for s in singles} == {201}
    for result, single in zip(batch.json()["results"], singles, strict=True):
        assert comparable(read(client, result["id"])) == comparable(read(client, single.json()["id"]))

    # Newer versions of all of them in one batch: each row is replaced, never duplicated.
    newer = [{**d, "source_version": 100 + i, "status": "lukket", "target_groups": ["barn_1_5"]}
             for i, d in enumerate(deliveries("bulk-batch", n))]
    again = client.post("/api/v1/reports/batch", json={"reports": newer})
    assert again.json()["counts"] == {"updated": n}
    for result in again.json()["results"]:
        stored = read(client, result["id"])
        assert stored["status"] == "lukket" and stored["target_groups"] == ["barn_1_5"]
        assert {x["code"] for x in stored["labels"] if x["dimension"] == "target_group"} == {"barn_1_5"}


def test_a_bulk_insert_that_breaks_a_constraint_raises_sqlalchemy_errors(session: Session) -> None:
    # Rows written through COPY or psycopg's pipeline fail like rows written through SQLAlchemy, so the
    # error handlers answer alike (IntegrityError here; OperationalError, i.e. 503, for a timeout).
    missing = (session.scalar(select(Report.id).order_by(Report.id.desc()).limit(1)) or 0) + 1_000
    table = ReportTargetGroup.__table__
    for n in (1, COPY_MIN_ROWS):
        savepoint = session.begin_nested()
        with pytest.raises(IntegrityError):
            BulkWriter(session).insert([(table, ("report_id", "code"), [(missing, f"c{i}") for i in range(n)])])
        savepoint.rollback()


@pytest.fixture
def impatient_app(database_url: str, engine: Engine, request: pytest.FixtureRequest) -> Iterator[FastAPI]:
    """An app that commits, with a short statement or lock timeout (the param) on an engine of its own
    (the limits are its connections' own); its rows and key are removed afterwards."""
    app = create_app(settings_for(database_url, **getattr(request, "param", {"statement_timeout_ms": 300})))
    source, name = f"test-{uuid.uuid4().hex[:10]}", f"impatient-{uuid.uuid4().hex[:8]}"
    app.state.test_source_system = source
    with make_sessionmaker(engine).begin() as session:
        app.state.test_headers = bearer(create_key(session, name, Role.INTEGRATION, None)[1])
    yield app
    with engine.begin() as connection:
        connection.execute(delete(Report).where(Report.source_system == source))
        connection.execute(delete(ApiKey).where(ApiKey.name == name))


@pytest.mark.postgres_only
@pytest.mark.parametrize(("impatient_app", "reason"), [
    ({"statement_timeout_ms": 300}, "database_timeout"),
    ({"statement_timeout_ms": 5_000, "lock_timeout_ms": 300}, "database_busy"),
], indirect=["impatient_app"], ids=["statement", "lock"])
def test_waiting_past_the_statement_timeout_answers_503(impatient_app: FastAPI, engine: Engine, reason: str) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("statement timeouts are PostgreSQL's")
    source = impatient_app.state.test_source_system
    with engine.connect() as blocker:
        # Another transaction is creating the same report and has not committed: our insert must wait.
        blocker.execute(text(
            "INSERT INTO report (source_system, external_id, title, description, reported_at, reported_on, "
            "occurred_sort_at, status, source_version, source_version_key, content_hash, created_at, updated_at) "
            "VALUES (:s, 'WAIT-1', 't', '', now(), current_date, now(), 'registrert', '1', 1, 'x', now(), now())"
        ), {"s": source})
        with TestClient(impatient_app, raise_server_exceptions=False,
                        headers=impatient_app.state.test_headers) as client:
            single = client.post("/api/v1/reports", json=report("WAIT-1", source_system=source))
            batch = client.post("/api/v1/reports/batch", json={"reports": [
                report("WAIT-1" if i == 7 else f"WAIT-B{i}", source_system=source) for i in range(COPY_MIN_ROWS + 4)
            ]})
        blocker.rollback()
    assert (single.status_code, batch.status_code) == (503, 503)
    assert single.headers["retry-after"] and batch.headers["retry-after"]
    # The true reason (a statement ran too long, or waited too long for another writer's lock), not "the
    # database cannot be reached".
    assert single.json()["error"] == batch.json()["error"] == reason, single.text
    with engine.connect() as connection:
        assert connection.scalar(select(Report.id).where(Report.source_system == source)) is None
