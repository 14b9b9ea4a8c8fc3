"""Entra ID sign-in for the pages against the fake OpenID provider, without a browser: the happy path, and
the ways a sign-in must fail (a state used twice, a token for another client, a nonce of another sign-in)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import jwt
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.web.models import WebSession
from tests.web.fake_openid import CLIENT_ID, TENANT, FakeOpenIdProvider


@pytest.fixture
def provider() -> Iterator[FakeOpenIdProvider]:
    server = FakeOpenIdProvider()
    yield server
    server.close()


@pytest.fixture
def entra_client(make_app: Callable[..., FastAPI], provider: FakeOpenIdProvider) -> Iterator[TestClient]:
    app = make_app(web_cookie_secure=False, oidc_issuer=provider.issuer, oidc_audience="api://avvik",
                   oidc_tenant_id=TENANT, oidc_jwks_url=f"{provider.base}/keys", oidc_client_id=CLIENT_ID)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def authorize(client: TestClient) -> str:
    """Start a sign-in and let the provider answer; the callback URL it sends the browser to."""
    start = client.get("/logg-inn/entra", follow_redirects=False)
    assert start.status_code == 303
    query = parse_qs(urlparse(start.headers["location"]).query)
    assert query["code_challenge_method"] == ["S256"] and query["client_id"] == [CLIENT_ID]
    answer = httpx.get(start.headers["location"], follow_redirects=False)
    assert answer.status_code == 302
    return answer.headers["location"]


def test_sign_in_maps_roles_and_departments(entra_client: TestClient, provider: FakeOpenIdProvider,
                                            session: Session) -> None:
    provider.user = {"oid": "oid-kari", "roles": ["adviser.BBSM", "adviser.BBS"], "name": "Kari"}
    done = entra_client.get(authorize(entra_client), follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/"
    row = session.scalars(select(WebSession)).one()
    assert (row.kind, row.subject, row.tenant, row.roles, row.departments) == (
        "user", "oid-kari", TENANT, ["adviser"], ["BBS", "BBSM"])
    assert entra_client.get("/").status_code == 200


def test_a_state_works_once(entra_client: TestClient) -> None:
    callback = authorize(entra_client)
    assert entra_client.get(callback, follow_redirects=False).status_code == 303
    replay = entra_client.get(callback, follow_redirects=False)
    assert replay.status_code == 401 and "utløpt eller allerede brukt" in replay.text


def test_a_token_for_another_client_or_sign_in_is_refused(entra_client: TestClient, provider: FakeOpenIdProvider,
                                                          session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    real = provider.token

    def tampered(**changes: Any) -> Callable[[dict[str, str]], dict[str, Any]]:
        def token(form: dict[str, str]) -> dict[str, Any]:
            answer = real(form)
            claims = jwt.decode(answer["id_token"], options={"verify_signature": False})
            answer["id_token"] = jwt.encode({**claims, **changes}, provider.key, algorithm="RS256",
                                            headers={"kid": "web-key"})
            return answer
        return token

    for changes, reason in (({"aud": "another-app"}, "ble ikke godtatt"), ({"nonce": "other"}, "hører ikke til"),
                            ({"tid": "another-tenant"}, "ble ikke godtatt")):
        monkeypatch.setattr(provider, "token", tampered(**changes))
        refused = entra_client.get(authorize(entra_client), follow_redirects=False)
        assert refused.status_code == 401 and reason in refused.text, changes
    assert session.scalars(select(WebSession)).first() is None


def test_the_provider_checks_the_pkce_verifier(entra_client: TestClient, provider: FakeOpenIdProvider) -> None:
    callback = authorize(entra_client)
    code = parse_qs(urlparse(callback).query)["code"][0]
    stolen = httpx.post(f"{provider.base}/token", data={"grant_type": "authorization_code", "code": code,
                                                        "client_id": CLIENT_ID, "code_verifier": "guessed",
                                                        "redirect_uri": "http://testserver/logg-inn/entra/svar"})
    assert stolen.status_code == 400  # a code without its verifier is worth nothing
