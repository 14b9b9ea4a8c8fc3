"""Liveness and readiness, including a database that is unmigrated or unreachable."""

from __future__ import annotations

import gc

from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from tests.conftest import DatabaseFactory, settings_for


def test_healthz_and_readyz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "detail": None}
    assert client.get("/readyz").status_code == 200


def test_readyz_is_503_on_an_unmigrated_database(databases: DatabaseFactory) -> None:
    with TestClient(create_app(Settings(database_url=databases.new(), _env_file=None))) as client:
        answer = client.get("/readyz")
    assert answer.status_code == 503
    assert "migrate" in answer.json()["detail"]


def test_readyz_and_api_are_503_when_the_database_is_unreachable() -> None:
    # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    settings = Settings(database_url="postgresql+psycopg://postgres@127.0.0.1:9/none?connect_timeout=2",
                        _env_file=None)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        ready = client.get("/readyz")
        # With a key to look up: a caller without credentials is refused (401) before any connection is taken.
        api = client.get("/api/v1/reports", headers={"X-API-Key": "avk_" + "x" * 40})
    assert ready.status_code == 503 and ready.json()["detail"] == "database unreachable"
    assert api.status_code == 503 and api.headers["retry-after"]
    assert api.json()["error"] == "database_unavailable"


def test_a_server_process_freezes_its_start_up_objects(database_url: str) -> None:
    # Production default: what exists at start-up leaves the collector's full passes (app.main).
    gc.unfreeze()
    try:
        with TestClient(create_app(settings_for(database_url, gc_freeze=True))) as client:
            frozen = gc.get_freeze_count()
            assert client.get("/readyz").status_code == 200
        assert frozen > 10_000  # modules, routes and schemas: far more than a handful of objects
    finally:
        gc.unfreeze()


def test_test_apps_do_not_freeze(database_url: str) -> None:
    gc.unfreeze()
    with TestClient(create_app(settings_for(database_url))) as client:
        assert client.get("/readyz").status_code == 200
    assert gc.get_freeze_count() == 0
