"""A key set URL that accepts and never answers must not take the database pool with it.

People's tokens wait for the identity provider's keys; machine clients' API keys do not need them. While
the key set hangs, signing-in calls must hold no database connection (the request's session connects at
its first statement, after authentication), fetches must be bounded and shared, and API-key calls
made meanwhile must succeed.
"""

from __future__ import annotations

import base64
import json
import socket
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete

from app.auth.keys import create_key
from app.auth.models import ApiKey
from app.auth.principal import Role
from app.db import make_engine, make_sessionmaker
from app.main import create_app
from tests.conftest import bearer, settings_for

FETCH_TIMEOUT_S = 2.0


@pytest.fixture
def silent_jwks() -> Iterator[str]:
    """A key set URL whose server accepts connections (the kernel's backlog) and never answers."""
    with socket.create_server(("127.0.0.1", 0), backlog=64) as server:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/keys"


def _unverifiable_token() -> str:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'kid': 'key-1', 'typ': 'JWT'})}.{part({'sub': 'x'})}.c2ln"


def test_api_keys_work_while_the_key_set_hangs(database_url: str, engine: Engine, silent_jwks: str) -> None:
    app = create_app(settings_for(database_url, oidc_issuer="https://issuer.example/v2.0", oidc_audience="api",
                                  oidc_tenant_id="tenant", oidc_jwks_url=silent_jwks,
                                  jwks_timeout_seconds=FETCH_TIMEOUT_S))
    # A small pool, so that calls holding connections while they wait would exhaust it at once.
    small = make_engine(database_url, pool_size=2, max_overflow=0, pool_timeout=1)
    app.state.engine, app.state.sessionmaker = small, make_sessionmaker(small)
    name = f"jwks-{uuid.uuid4().hex[:8]}"
    with make_sessionmaker(engine).begin() as session:
        key = create_key(session, name, Role.ADMIN, None)[1]
    try:
        with TestClient(app, raise_server_exceptions=False) as client, ThreadPoolExecutor(max_workers=12) as pool:
            def signed_in() -> tuple[httpx.Response, float]:
                start = time.monotonic()
                answer = client.get("/api/v1/reports", headers=bearer(_unverifiable_token()))
                return answer, time.monotonic() - start

            waiting = [pool.submit(signed_in) for _ in range(8)]
            time.sleep(0.3)  # the first fetch is under way, the other signing-in calls wait for it
            for _ in range(4):
                start = time.monotonic()
                answer = client.get("/api/v1/taxonomy", headers=bearer(key))
                assert answer.status_code == 200, answer.text
                assert time.monotonic() - start < 1.0
            results = [f.result(timeout=60) for f in waiting]
        assert Counter(a.status_code for a, _ in results) == {503: 8}
        assert all(a.json()["error"] == "unavailable" and a.headers["retry-after"] for a, _ in results)
        # One fetch for all of them, bounded by its timeout (not one timeout after another).
        assert app.state.jwks.fetches == 1
        assert max(seconds for _, seconds in results) < FETCH_TIMEOUT_S + 1.5
    finally:
        small.dispose()
        with engine.begin() as connection:
            connection.execute(delete(ApiKey).where(ApiKey.name == name))
