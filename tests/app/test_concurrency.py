"""Concurrent deliveries of the same new report end as one row, with no 500."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
from fastapi import FastAPI
from sqlalchemy import Engine, func, select

from app.report.models import Report
from tests.helpers import report


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
