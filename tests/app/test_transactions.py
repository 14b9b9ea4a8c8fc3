"""A commit that fails must become an error answer, never a 2xx for a report that was not stored."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, func, select, text
from sqlalchemy.exc import OperationalError

from app.db import SessionDep
from app.report.models import Report
from tests.helpers import report


def test_failed_commit_is_an_error_response_and_nothing_is_stored(committing_app: FastAPI, engine: Engine) -> None:
    source = committing_app.state.test_source_system

    def fail_commit(connection: Any) -> None:
        raise OperationalError("COMMIT", {}, Exception("disk I/O error during commit"))

    event.listen(engine, "commit", fail_commit)
    try:
        with TestClient(committing_app, raise_server_exceptions=False, headers=committing_app.state.test_headers) \
                as client:
            single = client.post("/api/v1/reports", json=report("TX-1", source_system=source))
            batch = client.post("/api/v1/reports/batch", json={"reports": [report("TX-2", source_system=source)]})
    finally:
        event.remove(engine, "commit", fail_commit)
    assert single.status_code == 503 and batch.status_code == 503
    assert single.headers["retry-after"]
    with engine.connect() as connection:
        stored = connection.scalar(select(func.count()).select_from(Report).where(Report.source_system == source))
    assert stored == 0


def test_successful_commit_is_visible_to_another_connection(committing_app: FastAPI, engine: Engine) -> None:
    source = committing_app.state.test_source_system
    with TestClient(committing_app, headers=committing_app.state.test_headers) as client:
        assert client.post("/api/v1/reports", json=report("TX-3", source_system=source)).status_code == 201
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(Report).where(Report.source_system == source)) == 1


@pytest.mark.parametrize("path", ["/api/v1/reports", "/api/v1/reports/batch"])
def test_error_bodies_carry_no_stack_trace(client: TestClient, path: str) -> None:
    answer = client.post(path, content=b"{not json", headers={"content-type": "application/json"})
    assert answer.status_code == 422
    assert "Traceback" not in answer.text and "File \"" not in answer.text


def test_an_sql_error_is_a_logged_500_on_both_engines_not_a_retryable_503(
    make_app: Callable[..., FastAPI], caplog: pytest.LogCaptureFixture
) -> None:
    # SQLite raises SQL errors as OperationalError, which otherwise means "database unavailable" (503 with
    # Retry-After): a bug would be retried forever and never logged.
    app = make_app()

    @app.get("/api/v1/test-sql-error")
    def broken(session: SessionDep) -> None:
        session.execute(text("SELECT no_such_column FROM report"))

    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get("/api/v1/test-sql-error")
    assert answer.status_code == 500 and "retry-after" not in answer.headers
    assert "unexpected" in caplog.text and "/api/v1/test-sql-error" in caplog.text
