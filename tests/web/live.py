"""A real server for browser tests: uvicorn in a thread, on a new migrated database of the backend under test."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import pytest
import uvicorn
from sqlalchemy import Engine

from app.auth.keys import create_key
from app.auth.principal import Role
from app.db import make_engine, make_sessionmaker
from app.main import create_app
from app.migrate import upgrade
from app.registry import service as registry
from app.registry.bootstrap import default_model as load_model
from app.settings import Settings
from tests.conftest import settings_for
from tests.helpers import report
from tests.web.conftest import deliver
from tests.web.fake_openid import CLIENT_ID, TENANT, FakeOpenIdProvider

REQUIRE_BROWSER = "AVVIK_REQUIRE_BROWSER"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def chromium_path() -> str:
    """Debian's Chromium; without it the browser tests skip (or fail when AVVIK_REQUIRE_BROWSER=1)."""
    chosen = os.environ.get("AVVIK_CHROMIUM")  # another binary (tests of this very rule name a missing one)
    path = (chosen if chosen and os.path.exists(chosen) else None) if chosen is not None else (
        shutil.which("chromium") or shutil.which("chromium-browser"))
    if path is None:
        message = ("browser tests need Chromium: `apt-get install -y chromium` "
                   f"(CI sets {REQUIRE_BROWSER}=1, which makes its absence a failure)")
        if os.environ.get(REQUIRE_BROWSER) == "1":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return path


def free_port() -> int:
    """A port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Live:
    """The running server, its keys and the reports it holds."""

    url: str
    engine: Engine
    provider: FakeOpenIdProvider
    keys: dict[str, str]
    flagged: list[int]
    beho: int
    titles: dict[int, str] = field(default_factory=dict)
    backend: str = ""


def prepare(database_url: str) -> tuple[Engine, dict[str, str]]:
    """Migrate a new database, register and activate the default model, and create a key of every role."""
    upgrade(database_url)
    engine = make_engine(database_url)
    with make_sessionmaker(engine).begin() as session:
        model = load_model(Settings(_env_file=None).model_dir)
        registry.register(session, model, source="corpus")
        registry.activate_if_none(session, model.version, by="tests")
        keys = {name: create_key(session, name, role, departments)[1] for name, role, departments in (
            ("admin", Role.ADMIN, None), ("adviser", Role.ADVISER, None), ("adviser-bbsm", Role.ADVISER, ["BBSM"]),
            ("integration", Role.INTEGRATION, None), ("dashboard", Role.DASHBOARD, None))}
    return engine, keys


def start(database_url: str) -> tuple[Live, uvicorn.Server, threading.Thread]:
    """Prepare the database, start the server and deliver reports."""
    engine, keys = prepare(database_url)
    provider = FakeOpenIdProvider()
    port = free_port()
    settings = settings_for(database_url, web_cookie_secure=False, web_key_signin=True, oidc_issuer=provider.issuer,
                            oidc_audience="api://avvik", oidc_tenant_id=TENANT, oidc_jwks_url=f"{provider.base}/keys",
                            oidc_client_id=CLIENT_ID, rate_limit_per_minute=100_000)
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    live = Live(url=url, engine=engine, provider=provider, keys=keys, flagged=[], beho=0)
    deliver_reports(live)
    return live, server, thread


def deliver_reports(live: Live) -> None:
    """Sixteen flagged school reports from the last months, and one of the health department (BEHO)."""
    headers = {"Authorization": f"Bearer {live.keys['integration']}"}
    with httpx.Client(base_url=live.url, timeout=30) as client:
        admin = {"Authorization": f"Bearer {live.keys['admin']}"}
        for body in deliver(client, headers, 16, prefix="WEB", recent=True):
            # An ingest answer says nothing of the classification: read the report as an admin.
            if client.get(f"/api/v1/reports/{body['id']}", headers=admin).json()["flagged"]:
                live.flagged.append(body["id"])
            live.titles[body["id"]] = body["title"]
        beho = client.post("/api/v1/reports", headers=headers, json=report(
            external_id="WEB-BEHO", title="Legevakten varslet ikke helsestasjonen om spedbarn",
            description="Spedbarn på 3 mnd var på legevakten, men helsestasjonen fikk ikke beskjed.",
            reporting_unit="Etat for helsetjenester – Legevakten", reported_at=datetime.now(UTC).isoformat()))
        assert beho.status_code == 201, beho.text
        live.beho = beho.json()["id"]
        live.titles[live.beho] = "Legevakten varslet ikke helsestasjonen om spedbarn"
    assert len(live.flagged) >= 10, "the classifier should flag these collaboration failures"
