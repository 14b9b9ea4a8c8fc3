"""The service runs as a least-privilege PostgreSQL role: it cannot erase or silence the audit log.

Roles are cluster-wide, so each run creates its own, with unique names, and drops them afterwards.
Migrations run as the owner (`avvik migrate` with AVVIK_MIGRATION_DATABASE_URL), `avvik db grant` gives
the runtime role its rights, and the app connects as the runtime role.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from app.auth.keys import create_key
from app.auth.principal import Role
from app.db import make_engine, make_sessionmaker
from app.main import create_app
from tests.conftest import PG_ENV, bearer, settings_for
from tests.helpers import report
from tests.live_server import AVVIK, REPO

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.skipif(not os.environ.get(PG_ENV), reason=f"needs PostgreSQL ({PG_ENV})"),
]

INSUFFICIENT_PRIVILEGE = "42501"


@dataclass
class Roles:
    """An owner and a runtime role, a database the owner owns, and a URL for each role."""

    owner_url: str
    runtime_url: str
    runtime: str


@pytest.fixture
def roles() -> Iterator[Roles]:
    """Unique roles and a database for this test; all of it dropped afterwards, whatever happens."""
    suffix = uuid.uuid4().hex[:10]
    owner, runtime, database = f"avvik_owner_{suffix}", f"avvik_runtime_{suffix}", f"avvik_roles_{suffix}"
    server = make_url(os.environ[PG_ENV])
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE ROLE "{owner}" LOGIN')
            connection.exec_driver_sql(f'CREATE ROLE "{runtime}" LOGIN')
            connection.exec_driver_sql(f'CREATE DATABASE "{database}" OWNER "{owner}"')
        yield Roles(
            owner_url=server.set(username=owner, password=None, database=database).render_as_string(False),
            runtime_url=server.set(username=runtime, password=None, database=database).render_as_string(False),
            runtime=runtime,
        )
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            connection.exec_driver_sql(f'DROP ROLE IF EXISTS "{runtime}"')
            connection.exec_driver_sql(f'DROP ROLE IF EXISTS "{owner}"')
        admin.dispose()


def _avvik(roles: Roles, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AVVIK_DATABASE_URL": roles.runtime_url, "AVVIK_MIGRATION_DATABASE_URL": roles.owner_url}
    return subprocess.run([AVVIK, *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=180)


def _refused(url: str, statement: str) -> str | None:
    """The SQLSTATE the statement fails with when run as the URL's role (None if it succeeds)."""
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(statement)
    except DBAPIError as exc:
        return getattr(exc.orig, "sqlstate", "?")
    finally:
        engine.dispose()
    return None


def test_the_runtime_role_works_the_service_but_cannot_erase_or_silence_the_audit_log(roles: Roles) -> None:
    migrated = _avvik(roles, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    # Migrating as the runtime role is impossible: it may not create anything.
    assert _refused(roles.runtime_url, "CREATE TABLE intruder (id int)") == INSUFFICIENT_PRIVILEGE
    granted = _avvik(roles, "db", "grant", "--role", roles.runtime)
    assert granted.returncode == 0, granted.stderr

    engine = make_engine(roles.runtime_url)
    try:
        with make_sessionmaker(engine).begin() as session:
            key = create_key(session, "roles-admin", Role.ADMIN, None)[1]
    finally:
        engine.dispose()
    app = create_app(settings_for(roles.runtime_url))
    with TestClient(app, raise_server_exceptions=False, headers=bearer(key)) as client:
        assert client.get("/readyz").status_code == 200
        created = client.post("/api/v1/reports", json=report("ROLE-1"))
        assert created.status_code == 201, created.text
        batch = client.post("/api/v1/reports/batch", json={"reports": [report(f"ROLE-B{i}") for i in range(20)]})
        assert batch.json()["counts"] == {"created": 20}, batch.text
        report_id = created.json()["id"]
        assert client.get(f"/api/v1/reports/{report_id}").status_code == 200
        review = client.post(f"/api/v1/reports/{report_id}/review", json={"decision": "is_case"})
        assert review.status_code == 201, review.text
        audit = client.get("/api/v1/audit", params={"report_id": report_id})
        assert audit.status_code == 200, audit.text
        assert {"report.read", "report.review"} <= {e["action"] for e in audit.json()["items"]}, audit.text

    for table in ("audit_event", "audit_event_report"):
        for statement in (f"TRUNCATE {table}", f"ALTER TABLE {table} DISABLE TRIGGER ALL",
                          f"ALTER TABLE {table} DISABLE TRIGGER USER", f"DELETE FROM {table}", f"DROP TABLE {table}"):
            assert _refused(roles.runtime_url, statement) == INSUFFICIENT_PRIVILEGE, statement
    assert _refused(roles.runtime_url, "UPDATE audit_event SET actor = 'x'") == INSUFFICIENT_PRIVILEGE
    assert _refused(roles.runtime_url, "UPDATE alembic_version SET version_num = 'x'") == INSUFFICIENT_PRIVILEGE
    # The owner still can (that is what owning means): the runtime role is what the server runs as.
    assert _refused(roles.owner_url, "ALTER TABLE audit_event DISABLE TRIGGER USER") is None

    # A table a later migration creates (as the owner) is usable by the runtime role without a new grant.
    assert _refused(roles.owner_url, "CREATE TABLE later_table (id serial PRIMARY KEY, note text)") is None
    assert _refused(roles.runtime_url, "INSERT INTO later_table (note) VALUES ('x')") is None
    engine = create_engine(roles.runtime_url)
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM later_table")).scalar() == 1
    finally:
        engine.dispose()


def test_grant_names_a_missing_role(roles: Roles) -> None:
    assert _avvik(roles, "migrate").returncode == 0
    missing = _avvik(roles, "db", "grant", "--role", f"{roles.runtime}_missing")
    assert missing.returncode == 1
    assert "no role named" in missing.stderr
