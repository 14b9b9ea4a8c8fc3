"""Concurrent deliveries of the same new report end as one row, with no 500."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from app.db import make_engine
from app.report.models import Report
from tests.conftest import DatabaseFactory
from tests.helpers import report
from tests.live_server import live_server


async def _post_all(app: FastAPI, requests: list[tuple[str, dict[str, object]]]) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test",
                                 headers=app.state.test_headers) as client:
        return await asyncio.gather(*(client.post(path, json=body) for path, body in requests))


def _count(engine: Engine, source: str, external_id: str) -> int:
    with engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(Report).where(
            Report.source_system == source, Report.external_id == external_id)) or 0


def test_twenty_concurrent_identical_creates_end_as_one_row(committing_app: FastAPI, engine: Engine) -> None:
    source = committing_app.state.test_source_system
    body = report("RACE-1", source_system=source)
    answers = asyncio.run(_post_all(committing_app, [("/api/v1/reports", body)] * 20))
    statuses = Counter(a.status_code for a in answers)
    assert statuses == {201: 1, 200: 19}, statuses
    assert {a.json()["id"] for a in answers} == {answers[0].json()["id"]}
    assert _count(engine, source, "RACE-1") == 1


def test_concurrent_batches_with_overlapping_reports(committing_app: FastAPI, engine: Engine) -> None:
    source = committing_app.state.test_source_system
    shared = [report(f"OVER-{i}", source_system=source, source_version=1) for i in range(50)]
    requests = [("/api/v1/reports/batch", {"reports": list(reversed(shared)) if n % 2 else shared})
                for n in range(6)]
    answers = asyncio.run(_post_all(committing_app, requests))
    assert {a.status_code for a in answers} == {200}
    outcomes = Counter(r["outcome"] for a in answers for r in a.json()["results"])
    assert outcomes == {"created": 50, "unchanged": 250}
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(Report)
                                 .where(Report.source_system == source)) == 50


def test_concurrent_versions_keep_the_highest(committing_app: FastAPI, engine: Engine) -> None:
    source = committing_app.state.test_source_system
    versions = list(range(1, 21))
    requests = [("/api/v1/reports", report("VER-1", source_system=source, source_version=v, status=f"s{v}"))
                for v in reversed(versions)]
    answers = asyncio.run(_post_all(committing_app, requests))
    assert all(a.status_code in (200, 201) for a in answers)
    with engine.connect() as connection:
        status = connection.scalar(select(Report.status).where(Report.source_system == source))
    assert status == "s20"



def test_twelve_concurrent_overlapping_batches_neither_deadlock_nor_lose_a_report(
        databases: DatabaseFactory, tmp_path: Path) -> None:
    # Twelve integrations deliver 100-item batches over overlapping keys, in different orders, to a real
    # server of three processes (true parallelism), five rounds; each round mixes new keys with updates
    # of the previous round's. Every batch must answer 200 (a deadlock used to answer 503 "the database
    # cannot be reached"), and every report must end stored once, at the highest version delivered.
    url, key = databases.new(), "avk_concurrency-" + "k" * 40
    env = {"AVVIK_DATABASE_URL": url, "AVVIK_BOOTSTRAP_API_KEY": key, "AVVIK_RATE_LIMIT_PER_MINUTE": "1000000"}
    rng = random.Random(12)
    highest: dict[str, int] = {}
    previous: list[str] = []
    with live_server(env, "--workers", "3", log=tmp_path / "server.log") as base, \
            httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=120) as client, \
            ThreadPoolExecutor(max_workers=12) as pool:
        assert client.post("/api/v1/reports", json=report("WARM-UP")).status_code == 201  # the model, once
        for round_no in range(5):
            keys_of_round = [f"DL-{round_no}-{i:03d}" for i in range(200)] + previous
            batches = []
            for n in range(12):
                version = round_no * 100 + n + 1
                keys = rng.sample(keys_of_round, 100)
                for k in keys:
                    highest[k] = max(highest.get(k, 0), version)
                batches.append({"reports": [report(k, source_version=version, status=f"v{version}") for k in keys]})
            answers = list(pool.map(lambda body: client.post("/api/v1/reports/batch", json=body), batches))
            statuses = Counter(a.status_code for a in answers)
            assert statuses == {200: 12}, (round_no, statuses, [a.text[:300] for a in answers if a.status_code != 200])
            outcomes = Counter(r["outcome"] for a in answers for r in a.json()["results"])
            assert set(outcomes) <= {"created", "updated", "stale"}, outcomes
            previous = rng.sample(keys_of_round[:200], 100)
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            stored = connection.execute(select(Report.external_id, Report.source_version, Report.status)
                                        .where(Report.external_id.like("DL-%"))).all()
    finally:
        engine.dispose()
    assert Counter(e for e, _, _ in stored) == Counter(highest.keys()), "a report is missing or stored twice"
    assert {e: (v, s) for e, v, s in stored} == {k: (str(v), f"v{v}") for k, v in highest.items()}


@pytest.mark.postgres_only
def test_a_deadlock_is_retried_inside_the_request_not_answered_503(committing_app: FastAPI, engine: Engine) -> None:
    # A forced deadlock: another transaction holds B and then asks for A while the batch holds A and waits
    # for B. PostgreSQL aborts the batch's statement (its deadlock check runs first); the service rolls
    # back to its savepoint, which frees A, and runs the upsert again once the other transaction is done.
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers: nothing to deadlock")
    source = committing_app.state.test_source_system
    keys = ["LOCK-A", "LOCK-B"]
    with TestClient(committing_app, raise_server_exceptions=False, headers=committing_app.state.test_headers) as client:
        created = client.post("/api/v1/reports/batch",
                              json={"reports": [report(k, source_system=source) for k in keys]})
        assert created.json()["counts"] == {"created": 2}
        deadlocks_before = _deadlocks(engine)
        with engine.connect() as other, ThreadPoolExecutor(max_workers=1) as pool:
            other.exec_driver_sql("SET deadlock_timeout = '10s'")  # so that the batch's backend detects it
            lock = select(Report.id).where(Report.source_system == source).with_for_update()
            other.execute(lock.where(Report.external_id == "LOCK-B"))
            update = pool.submit(lambda: client.post("/api/v1/reports/batch", json={"reports": [
                report(k, source_system=source, source_version=2, status="endret") for k in keys]}))
            time.sleep(0.5)  # the batch has locked A and waits for B
            other.execute(lock.where(Report.external_id == "LOCK-A"))  # returns once the batch rolled back
            other.rollback()
            answer = update.result(timeout=60)
    assert answer.status_code == 200, answer.text
    assert answer.json()["counts"] == {"updated": 2}
    assert _deadlocks(engine) > deadlocks_before
    with engine.connect() as connection:
        assert set(connection.scalars(select(Report.status).where(Report.source_system == source))) == {"endret"}


def _deadlocks(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.exec_driver_sql(
            "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()").scalar() or 0)
