"""Fixtures of the web pages' tests: a signed-in test client on the test's transaction, and reports."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.auth.principal import Role
from tests.conftest import bearer
from tests.helpers import report

# Collaboration failures about children, as advisers meet them; the classifier flags each of them.
FLAG_TEXTS = [
    ("Skolen ga ikke beskjed til helsesykepleier",
     "Ny elev på 4. trinn startet på skolen uten at skolehelsetjenesten fikk beskjed fra skolen."),
    ("Barnevernet ga ingen tilbakemelding til barnehagen",
     "Barnehagen sendte bekymringsmelding om gutt på 4 år. Barnevernet har ikke gitt tilbakemelding."),
    ("Ingen fra NAV møtte i ansvarsgruppemøte",
     "Ansvarsgruppemøte for ungdom på 15 år. Ingen fra NAV møtte, og ingen hadde avtalt hvem som skulle følge opp."),
    ("Sykehuset sendte ikke epikrise til helsestasjonen",
     "Premature tvillinger ble skrevet ut uten at helsestasjonen fikk epikrise fra sykehuset."),
    ("Skulen sa ikkje frå til helsestasjonen",
     "Eleven på 3. trinn byrja på skulen, men skulen sa ikkje frå til skulehelsetenesta, og ho fekk ikkje vite noko."),
    ("PPT og skolen var uenige om hvem som hadde ansvaret",
     "Eleven på 6. trinn fikk ikke oppfølging fordi PPT og skolen sa at den andre hadde ansvaret."),
    ("E-melding om barn sendt til feil mottaker",
     "Fastlegen sendte e-melding om et barn på 2 år til feil helsestasjon, og helsestasjonen fikk ikke beskjed."),
]


def deliver(client: Any, headers: dict[str, str], count: int, unit: str = "Etat for skole – Garnes skole",
            prefix: str = "W", recent: bool = False) -> list[dict[str, Any]]:
    """Deliver `count` reports through the API (so they are scored as in production); their JSON. Reported
    over 2026, or with `recent` over the last months (the statistics page's default period)."""
    today = datetime.now(UTC)
    stored = []
    for i in range(count):
        title, description = FLAG_TEXTS[i % len(FLAG_TEXTS)]
        reported_at = ((today - timedelta(days=3 + (17 * i) % 330)).isoformat() if recent
                       else f"2026-{(i % 11) + 1:02d}-03T10:00:00+01:00")
        answer = client.post("/api/v1/reports", headers=headers, json=report(
            external_id=f"{prefix}-{i:04d}", title=title, description=description, reporting_unit=unit,
            target_groups=[], services_involved=[], reported_at=reported_at))
        assert answer.status_code == 201, answer.text
        stored.append({**answer.json(), "title": title})  # an ingest answer carries no text of the report
    return stored


def sign_in(client: TestClient, key: str) -> TestClient:
    """Sign in on the form with an API key; the client keeps the session cookie."""
    form = client.get("/logg-inn")
    token = re.search(r'name="signin_token" value="([^"]+)"', form.text)
    assert token is not None
    answer = client.post("/logg-inn", data={"api_key": key, "signin_token": token.group(1), "neste": "/"},
                         follow_redirects=False)
    assert answer.status_code == 303, answer.text
    return client


def csrf_of(html: str) -> str:
    """The CSRF token a page carries in its forms."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


@pytest.fixture
def web(make_app: Callable[..., FastAPI]) -> Iterator[Callable[..., TestClient]]:
    """Clients of one app (plain HTTP, so the cookie is not marked Secure) on the test's transaction."""
    app = make_app(web_cookie_secure=False)
    clients: list[TestClient] = []

    def new(**kwargs: Any) -> TestClient:
        client = TestClient(app, raise_server_exceptions=False, **kwargs)
        client.__enter__()
        clients.append(client)
        return client

    yield new
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def adviser(web: Callable[..., TestClient], api_keys: dict[Role, str]) -> TestClient:
    """A client signed in with the adviser key (every department)."""
    return sign_in(web(), api_keys[Role.ADVISER])


@pytest.fixture
def integration(api_keys: dict[Role, str]) -> dict[str, str]:
    """The header of the integration's key, for delivering reports."""
    return bearer(api_keys[Role.INTEGRATION])
