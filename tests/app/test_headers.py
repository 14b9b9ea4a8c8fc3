"""Every answer carries the security headers: API, errors (also those sent by middleware), health, docs."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.auth.principal import Role
from app.middleware import SECURITY_HEADERS
from tests.conftest import bearer


def test_every_kind_of_answer_has_the_security_headers(make_app: Callable[..., FastAPI],
                                                        api_keys: dict[Role, str]) -> None:
    with TestClient(make_app(max_body_bytes=1024), raise_server_exceptions=False) as anonymous:
        answers = {
            "healthz": anonymous.get("/healthz"),
            "docs": anonymous.get("/docs"),
            "openapi": anonymous.get("/openapi.json"),
            "401": anonymous.get("/api/v1/reports"),
            "404 route": anonymous.get("/nowhere"),
            "413 middleware": anonymous.post("/api/v1/reports", content=b"x" * 2048,
                                             headers={"content-type": "application/json"}),
            "422 middleware": anonymous.get("/api/v1/reports", params={"q": "a\u0000"}),
        }
        signed_in = bearer(api_keys[Role.ADMIN])
        answers["200 api"] = anonymous.get("/api/v1/taxonomy", headers=signed_in)
        answers["422 api"] = anonymous.get("/api/v1/reports", params={"limit": 0}, headers=signed_in)
        answers["404 api"] = anonymous.get("/api/v1/reports/999999", headers=signed_in)
        answers["csv"] = anonymous.get("/api/v1/reports", params={"format": "csv"}, headers=signed_in)
    assert {name: a.status_code for name, a in answers.items()} == {
        "healthz": 200, "docs": 200, "openapi": 200, "401": 401, "404 route": 404, "413 middleware": 413,
        "422 middleware": 422, "200 api": 200, "422 api": 422, "404 api": 404, "csv": 200}
    for name, answer in answers.items():
        for header, value in SECURITY_HEADERS.items():
            assert answer.headers.get(header) == value, (name, header)
        assert "server" not in answer.headers, name
