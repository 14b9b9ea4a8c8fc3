"""Authentication and authorisation (OWASP API Security Top 10, 2023: API1, API2, API3, API4, API5).

Tokens are signed here with test RSA keys; the JWKS is served by a real HTTP server on loopback.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from jwt.algorithms import RSAAlgorithm
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from app.auth.dependencies import route_rule
from app.auth.keys import create_key, revoke_key
from app.auth.principal import Role
from app.cli import cli
from app.main import create_app
from app.settings import Settings
from tests.conftest import bearer
from tests.helpers import report

ISSUER = "https://login.microsoftonline.com/tenant-1/v2.0"
AUDIENCE = "api://avvik"
TENANT = "tenant-1"
PUBLIC_ROUTES = {"/healthz", "/readyz"}
OWN_KEY_ROUTES = {"/metrics"}  # outside the contract; answers to a key of its own (AVVIK_METRICS_TOKEN), not roles


class JwksServer:
    """Serves a JWKS on loopback and counts how often it was fetched."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.fetches = 0
        self.down = False
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.fetches += 1
                if outer.down:
                    self.send_response(503)
                    self.end_headers()
                    return
                body = json.dumps({"keys": outer.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/keys"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def publish(self, key: rsa.RSAPrivateKey, kid: str) -> None:
        jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
        self.keys.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def jwks(signing_key: rsa.RSAPrivateKey) -> Iterator[JwksServer]:
    server = JwksServer()
    server.publish(signing_key, "key-1")
    yield server
    server.server.shutdown()


def token(key: Any, *, kid: str = "key-1", alg: str = "RS256", headers: dict[str, Any] | None = None,
          **claims: Any) -> str:
    now = int(time.time())
    payload = {"iss": ISSUER, "aud": AUDIENCE, "tid": TENANT, "oid": "user-oid-1", "exp": now + 600,
               "nbf": now - 10, "iat": now - 10, "roles": ["adviser"], "email": "ola@example.no", **claims}
    return jwt.encode(payload, key, algorithm=alg, headers={"kid": kid, **(headers or {})})


@pytest.fixture
def oidc_client(make_app: Callable[..., FastAPI], jwks: JwksServer) -> Iterator[TestClient]:
    app = make_app(oidc_issuer=ISSUER, oidc_audience=AUDIENCE, oidc_tenant_id=TENANT, oidc_jwks_url=jwks.url)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def api_routes(routes: Iterable[Any]) -> Iterator[APIRoute]:
    """Every API route, also inside included routers (FastAPI 0.16x lists those as one entry each)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):
            yield from api_routes(route.original_router.routes)


def test_every_route_declares_who_may_call_it() -> None:
    app = create_app(Settings(_env_file=None))
    # The API's routes; the web pages answer to a session and are checked by tests/web (every page declares who).
    unruled = PUBLIC_ROUTES | OWN_KEY_ROUTES
    routes = [r for r in api_routes(app.routes) if r.path.startswith("/api/") or r.path in unruled]
    # Not vacuous: every path of the contract is among the routes checked.
    assert {r.path for r in routes} >= set(app.openapi()["paths"])
    for route in routes:
        rule = route_rule(route.dependant)
        assert rule is not None or route.path in unruled, f"{route.path} declares no authorisation rule"
        assert rule is None or route.path not in unruled


def test_no_credentials_is_401_with_a_bearer_challenge(make_app: Callable[..., FastAPI]) -> None:
    with TestClient(make_app(), raise_server_exceptions=False) as anonymous:
        for method, path in (("GET", "/api/v1/reports"), ("GET", "/api/v1/taxonomy"), ("POST", "/api/v1/reports"),
                             ("GET", "/api/v1/audit"), ("GET", "/api/v1/reports/1")):
            answer = anonymous.request(method, path, json=report() if method == "POST" else None)
            assert answer.status_code == 401, path
            assert answer.headers["www-authenticate"].startswith("Bearer")
        assert anonymous.get("/healthz").status_code == 200
        assert anonymous.get("/openapi.json").status_code == 200


@pytest.mark.parametrize("credential", ["avk_nonsense", "Basic abc"])
def test_unknown_key_or_scheme_is_401_invalid_token(make_app: Callable[..., FastAPI], credential: str) -> None:
    header = credential if credential.startswith("Basic") else f"Bearer {credential}"
    with TestClient(make_app(), raise_server_exceptions=False) as client:
        answer = client.get("/api/v1/taxonomy", headers={"Authorization": header})
    assert answer.status_code == 401
    assert 'error="invalid_token"' in answer.headers["www-authenticate"]


def test_key_in_either_header_and_revoked_key(make_app: Callable[..., FastAPI], session: Session) -> None:
    _, key = create_key(session, "dashboard-1", Role.DASHBOARD, None)
    with TestClient(make_app(), raise_server_exceptions=False) as client:
        assert client.get("/api/v1/taxonomy", headers={"X-API-Key": key}).status_code == 200
        assert client.get("/api/v1/taxonomy", headers=bearer(key)).status_code == 200
        revoke_key(session, "dashboard-1")
        answer = client.get("/api/v1/taxonomy", headers=bearer(key))
    assert answer.status_code == 401
    assert "revoked" in answer.json()["message"]


@pytest.mark.parametrize(("role", "method", "path", "allowed"), [
    (Role.INTEGRATION, "POST", "/api/v1/reports", True),
    (Role.INTEGRATION, "GET", "/api/v1/reports", False),
    (Role.INTEGRATION, "GET", "/api/v1/taxonomy", True),
    (Role.ADVISER, "GET", "/api/v1/reports", True),
    (Role.ADVISER, "POST", "/api/v1/reports", False),
    (Role.ADVISER, "POST", "/api/v1/taxonomy/service", False),
    (Role.ADVISER, "GET", "/api/v1/audit", False),
    (Role.DASHBOARD, "GET", "/api/v1/reports", False),
    (Role.DASHBOARD, "GET", "/api/v1/reports/1", False),
    (Role.DASHBOARD, "GET", "/api/v1/taxonomy", True),
    (Role.ADMIN, "GET", "/api/v1/audit", True),
    (Role.ADMIN, "POST", "/api/v1/taxonomy/service", True),
])
def test_function_level_authorisation(make_app: Callable[..., FastAPI], api_keys: dict[Role, str], role: Role,
                                      method: str, path: str, allowed: bool) -> None:
    body = report() if path == "/api/v1/reports" else {"code": "ny_tjeneste", "label": "Ny"}
    with TestClient(make_app(), raise_server_exceptions=False, headers=bearer(api_keys[role])) as client:
        answer = client.request(method, path, json=body if method == "POST" else None)
    if allowed:
        assert answer.status_code < 400, answer.text
    else:
        assert answer.status_code == 403
        assert 'error="insufficient_scope"' in answer.headers["www-authenticate"]


def test_another_departments_report_is_404_not_403(make_app: Callable[..., FastAPI], session: Session,
                                                   client: TestClient) -> None:
    school = client.post("/api/v1/reports", json=report(reporting_unit="Etat for skole – Garnes skole")).json()
    child_welfare = client.post("/api/v1/reports", json=report(reporting_unit="Etat for barn og familie – BV")).json()
    _, key = create_key(session, "adviser-bbsm", Role.ADVISER, ["BBSM"])
    with TestClient(make_app(), raise_server_exceptions=False, headers=bearer(key)) as adviser:
        hidden = adviser.get(f"/api/v1/reports/{school['id']}")
        missing = adviser.get("/api/v1/reports/999999999")
        assert (hidden.status_code, hidden.json()["error"]) == (missing.status_code, missing.json()["error"]) \
            == (404, "not_found")
        assert adviser.get(f"/api/v1/reports/by-external/bkkvalitet/{school['external_id']}").status_code == 404
        assert adviser.get(f"/api/v1/reports/{child_welfare['id']}").status_code == 200
        listed = {i["id"] for i in adviser.get("/api/v1/reports", params={"limit": 500}).json()["items"]}
        assert child_welfare["id"] in listed and school["id"] not in listed


def test_ingest_cannot_set_server_owned_fields(client: TestClient) -> None:
    for field, value in (("id", 1), ("category", "samhandling_barn_unge"), ("provenance", "adviser"),
                         ("created_at", "2020-01-01T00:00:00Z"), ("redactions", {})):
        answer = client.post("/api/v1/reports", json=report(**{field: value}))
        assert answer.status_code == 422, field
        assert answer.json()["fields"][0]["field"] == field


def test_rate_limit_is_429_with_retry_after(make_app: Callable[..., FastAPI], api_keys: dict[Role, str]) -> None:
    app = make_app(rate_limit_per_minute=5)
    with TestClient(app, raise_server_exceptions=False, headers=bearer(api_keys[Role.DASHBOARD])) as client:
        statuses = [client.get("/api/v1/taxonomy").status_code for _ in range(7)]
        limited = client.get("/api/v1/taxonomy")
    assert statuses[:5] == [200] * 5 and statuses[5:] == [429, 429]
    assert int(limited.headers["retry-after"]) >= 1


def test_list_limits_and_repeated_filters_are_capped(client: TestClient) -> None:
    assert client.get("/api/v1/reports", params={"limit": 10_000}).status_code == 422
    assert client.get("/api/v1/reports", params={"service": ["skole"] * 41}).status_code == 422
    assert client.get("/api/v1/reports", params={"q": "x" * 201}).status_code == 422


def test_valid_token_signs_in_a_person_by_object_id(oidc_client: TestClient, signing_key: rsa.RSAPrivateKey,
                                                    session: Session) -> None:
    answer = oidc_client.get("/api/v1/reports", headers=bearer(token(signing_key)))
    assert answer.status_code == 200
    from sqlalchemy import select

    from app.audit.models import AuditEvent

    event = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert event is not None and event.actor == f"user:user-oid-1@{TENANT}"
    assert "ola@example.no" not in event.actor


# Times as seconds from when the test runs (a time taken at collection goes stale in a long run).
RELATIVE_CLAIMS = ("exp", "nbf")


@pytest.mark.parametrize(("change", "reason"), [
    ({"exp": -120}, "expired"),
    ({"nbf": 600}, "not yet valid"),
    ({"aud": "api://another"}, "audience"),
    ({"iss": "https://login.microsoftonline.com/other/v2.0"}, "issuer"),
    ({"tid": "tenant-2"}, "tenant"),
])
def test_bad_claims_are_401(oidc_client: TestClient, signing_key: rsa.RSAPrivateKey, change: dict[str, Any],
                            reason: str) -> None:
    now = int(time.time())
    claims = {k: now + v if k in RELATIVE_CLAIMS else v for k, v in change.items()}
    answer = oidc_client.get("/api/v1/reports", headers=bearer(token(signing_key, **claims)))
    assert answer.status_code == 401
    assert 'error="invalid_token"' in answer.headers["www-authenticate"]
    assert reason in answer.json()["message"]


def test_wrong_signature_is_401(oidc_client: TestClient) -> None:
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert oidc_client.get("/api/v1/reports", headers=bearer(token(impostor))).status_code == 401


def test_alg_none_and_hmac_with_the_public_key_are_refused(oidc_client: TestClient,
                                                           signing_key: rsa.RSAPrivateKey) -> None:
    unsigned = jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "tid": TENANT, "oid": "x", "roles": ["admin"],
                           "exp": int(time.time()) + 600, "nbf": int(time.time())}, None, algorithm="none",
                          headers={"kid": "key-1"})
    assert oidc_client.get("/api/v1/reports", headers=bearer(unsigned)).status_code == 401
    _, payload, _ = token(signing_key).split(".")
    import base64
    import hashlib
    import hmac

    from cryptography.hazmat.primitives import serialization

    public_pem = signing_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    forged_header = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "kid": "key-1", "typ": "JWT"}).encode())
    signing_input = forged_header.rstrip(b"=") + b"." + payload.encode()
    signature = base64.urlsafe_b64encode(hmac.new(public_pem, signing_input, hashlib.sha256).digest()).rstrip(b"=")
    forged = (signing_input + b"." + signature).decode()
    assert oidc_client.get("/api/v1/reports", headers=bearer(forged)).status_code == 401


def test_jku_and_x5u_headers_are_ignored(oidc_client: TestClient, jwks: JwksServer) -> None:
    attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = token(attacker, kid="attacker", headers={"jku": "http://127.0.0.1:1/evil", "x5u": "http://127.0.0.1:1/x"})
    assert oidc_client.get("/api/v1/reports", headers=bearer(forged)).status_code == 401


def test_unknown_kid_refetches_the_jwks_at_most_once(oidc_client: TestClient, jwks: JwksServer,
                                                     signing_key: rsa.RSAPrivateKey) -> None:
    assert oidc_client.get("/api/v1/reports", headers=bearer(token(signing_key))).status_code == 200
    before = jwks.fetches
    for n in range(5):
        oidc_client.get("/api/v1/reports", headers=bearer(token(signing_key, kid=f"unknown-{n}")))
    assert jwks.fetches - before <= 1


def test_rotated_key_is_picked_up(make_app: Callable[..., FastAPI], jwks: JwksServer,
                                  signing_key: rsa.RSAPrivateKey) -> None:
    app = make_app(oidc_issuer=ISSUER, oidc_audience=AUDIENCE, oidc_tenant_id=TENANT, oidc_jwks_url=jwks.url,
                   jwks_min_refetch_seconds=0)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/api/v1/reports", headers=bearer(token(signing_key))).status_code == 200
        rotated = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwks.publish(rotated, "key-2")
        assert client.get("/api/v1/reports", headers=bearer(token(rotated, kid="key-2"))).status_code == 200


def test_no_reachable_jwks_is_503(make_app: Callable[..., FastAPI], jwks: JwksServer,
                                  signing_key: rsa.RSAPrivateKey) -> None:
    jwks.down = True
    app = make_app(oidc_issuer=ISSUER, oidc_audience=AUDIENCE, oidc_tenant_id=TENANT, oidc_jwks_url=jwks.url)
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get("/api/v1/reports", headers=bearer(token(signing_key)))
    assert answer.status_code == 503
    assert answer.headers["retry-after"]


def test_roles_come_from_the_roles_claim_with_optional_department(oidc_client: TestClient, client: TestClient,
                                                                  signing_key: rsa.RSAPrivateKey) -> None:
    school = client.post("/api/v1/reports", json=report(reporting_unit="Etat for skole – Garnes skole")).json()
    limited = bearer(token(signing_key, roles=["adviser.BBSM"]))
    assert oidc_client.get(f"/api/v1/reports/{school['id']}", headers=limited).status_code == 404
    full = bearer(token(signing_key, roles=["adviser"]))
    assert oidc_client.get(f"/api/v1/reports/{school['id']}", headers=full).status_code == 200
    groups_only = bearer(token(signing_key, roles=[], groups=["adviser"]))
    assert oidc_client.get("/api/v1/reports", headers=groups_only).status_code == 403


def test_tokens_are_refused_when_oidc_is_not_configured(client: TestClient, signing_key: rsa.RSAPrivateKey) -> None:
    answer = client.get("/api/v1/reports", headers=bearer(token(signing_key)))
    assert answer.status_code == 401


def test_apikey_cli_shows_the_key_once_and_stores_a_hash(database_url: str, monkeypatch: pytest.MonkeyPatch,
                                                          databases: Any) -> None:
    monkeypatch.setenv("AVVIK_DATABASE_URL", database_url)
    runner = CliRunner()
    name = f"cli-key-{time.monotonic_ns()}"
    created = runner.invoke(cli, ["apikey", "create", "--name", name, "--role", "dashboard"])
    assert created.exit_code == 0, created.output
    key = created.stdout.strip().splitlines()[0]
    assert key.startswith("avk_")
    listed = runner.invoke(cli, ["apikey", "list"]).output
    assert name in listed and key not in listed
    with TestClient(create_app(Settings(database_url=database_url, _env_file=None))) as client:
        assert client.get("/api/v1/taxonomy", headers=bearer(key)).status_code == 200
        assert runner.invoke(cli, ["apikey", "revoke", name]).exit_code == 0
        assert client.get("/api/v1/taxonomy", headers=bearer(key)).status_code == 401
    assert runner.invoke(cli, ["apikey", "create", "--name", "x", "--role", "superuser"]).exit_code == 2


def test_docs_can_be_switched_off(make_app: Callable[..., FastAPI]) -> None:
    with TestClient(make_app(docs_enabled=False)) as client:
        assert client.get("/docs").status_code == 404
    with TestClient(make_app()) as client:
        assert client.get("/docs").status_code == 200


def test_every_secured_operation_in_the_contract_refuses_missing_or_made_up_credentials(
        make_app: Callable[..., FastAPI]) -> None:
    """The committed contract says which operations need credentials (its securitySchemes); each of them,
    called as the contract describes it, must refuse a caller without credentials and one with an unknown
    key in either declared header, before it looks at the request's parameters or body."""
    contract = json.loads((Path(__file__).parents[2] / "openapi" / "openapi.json").read_text())
    assert set(contract["components"]["securitySchemes"]) == {"bearer", "apiKey"}
    secured = [(method.upper(), path) for path, operations in contract["paths"].items()
               for method, operation in operations.items() if operation.get("security")]
    public = {path for path, operations in contract["paths"].items()
              for operation in operations.values() if not operation.get("security")}
    assert public == PUBLIC_ROUTES
    assert len(secured) >= 20
    with TestClient(make_app(), raise_server_exceptions=False) as client:
        for method, path in secured:
            concrete = re.sub(r"\{[^}]+\}", "1", path)
            for headers in ({}, {"X-API-Key": "avk_made_up"}, {"Authorization": "Bearer avk_made_up"}):
                answer = client.request(method, concrete, headers=headers)
                assert answer.status_code == 401, (method, path, headers, answer.text)
                assert answer.headers["www-authenticate"].startswith("Bearer"), (method, path)
