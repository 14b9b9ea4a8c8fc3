"""The model list and live quality as CSV, with the same content as their JSON."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.auth.principal import Role
from app.export import cell
from tests.conftest import bearer


def csv_rows(content: bytes) -> list[dict[str, str]]:
    assert content.startswith("\ufeff".encode())
    return list(csv.DictReader(io.StringIO(content.decode("utf-8-sig")), delimiter=";"))


def test_models_as_csv_flatten_metrics_into_dotted_columns(client: TestClient) -> None:
    models = client.get("/api/v1/models").json()
    assert models, "the migrated database registers the default model"
    answer = client.get("/api/v1/models", params={"format": "csv"})
    assert answer.headers["content-type"].startswith("text/csv")
    rows = csv_rows(answer.content)
    assert [r["version"] for r in rows] == [m["version"] for m in models]
    assert [r["active"] for r in rows] == ["true" if m["active"] else "false" for m in models]
    assert "metrics" not in rows[0]
    dotted = [c for c in rows[0] if c.startswith("metrics.")]
    assert dotted, rows[0].keys()
    path = dotted[0].split(".")[1:]
    value = models[0]["metrics"]
    for key in path:
        value = value[key]
    assert rows[0][dotted[0]] == cell(value)  # the spreadsheet form of the JSON value


def test_quality_as_csv_overall_first_then_departments(make_app: Callable[..., FastAPI],
                                                        api_keys: dict[Role, str]) -> None:
    with TestClient(make_app(), headers=bearer(api_keys[Role.DASHBOARD])) as dashboard:
        quality = dashboard.get("/api/v1/models/active/quality").json()
        rows = csv_rows(dashboard.get("/api/v1/models/active/quality", headers={"Accept": "text/csv"}).content)
        assert dashboard.get("/api/v1/models", params={"format": "csv"}).status_code == 403
    assert len(rows) == 1 + len(quality["by_department"])
    assert rows[0]["department"] == "" and rows[0]["model_version"] == (quality["model_version"] or "")
    assert int(rows[0]["waiting_for_review"]) == quality["overall"]["waiting_for_review"]
