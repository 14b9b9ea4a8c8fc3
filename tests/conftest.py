"""Fixtures for a real database: SQLite always, PostgreSQL too when AVVIK_TEST_DATABASE_URL is set.

Every database-backed test runs once per backend. The schema is built the way production builds it,
by running the migrations; each test runs in a transaction that is rolled back afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, create_engine, delete
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app.auth.keys import create_key
from app.auth.models import ApiKey
from app.auth.principal import Role
from app.db import make_engine, make_sessionmaker
from app.main import create_app
from app.migrate import upgrade
from app.registry import service as registry
from app.registry.bootstrap import default_model
from app.report.models import Report
from app.settings import Settings

PG_ENV = "AVVIK_TEST_DATABASE_URL"


def _backends() -> list[object]:
    backends = [pytest.param("sqlite", id="sqlite")]
    if os.environ.get(PG_ENV):
        backends.append(pytest.param("postgresql", id="postgresql"))
    return backends


class DatabaseFactory:
    """Creates throwaway databases of one backend and removes them at the end of the run."""

    def __init__(self, backend: str, tmp: Path) -> None:
        self.backend = backend
        self.tmp = tmp
        self.created: list[str] = []

    def new(self) -> str:
        """The URL of a new, empty database."""
        name = f"avvik_test_{uuid.uuid4().hex[:12]}"
        if self.backend == "sqlite":
            return f"sqlite:///{self.tmp / name}.db"
        server = os.environ[PG_ENV]
        admin = create_engine(server, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        except OperationalError as exc:
            # CI must fail, not skip, when the PostgreSQL it was promised is not there.
            pytest.fail(f"PostgreSQL at {PG_ENV} cannot be reached: {exc}", pytrace=False)
        finally:
            admin.dispose()
        self.created.append(name)
        return make_url(server).set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        if not self.created:
            return
        admin = create_engine(os.environ[PG_ENV], isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            for name in self.created:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(scope="session", params=_backends())
def databases(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseFactory]:
    """Throwaway databases of the backend under test."""
    factory = DatabaseFactory(request.param, tmp_path_factory.mktemp(request.param))
    yield factory
    factory.drop_all()


@pytest.fixture(scope="session")
def database_url(databases: DatabaseFactory) -> str:
    """The migrated database shared by this run's tests of one backend."""
    url = databases.new()
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on the migrated database, with the default model registered and active (as `avvik serve`
    leaves a new installation before it binds), so that tests do not each store an artifact."""
    engine = make_engine(database_url)
    with make_sessionmaker(engine).begin() as session:
        model = default_model(Settings(_env_file=None).model_dir)
        registry.register(session, model, source="corpus")
        registry.activate_if_none(session, model.version, by="tests")
    yield engine
    engine.dispose()


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    """A connection whose outer transaction is rolled back after the test, commits included."""
    with engine.connect() as connection:
        outer = connection.begin()
        yield connection
        outer.rollback()


@pytest.fixture
def session(connection: Connection) -> Iterator[Session]:
    """A session inside the test's transaction; the app's commits become savepoints."""
    with Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False) as session:
        yield session


def settings_for(database_url: str, **overrides: object) -> Settings:
    """Settings for a test app on a database (rate limit out of the way unless a test sets one; no
    gc.freeze, which would keep every test app's reference cycles for the rest of the run)."""
    values: dict[str, object] = {"rate_limit_per_minute": 1_000_000, "gc_freeze": False, **overrides}
    return Settings(database_url=database_url, _env_file=None, **values)  # type: ignore[arg-type]


def bearer(key: str) -> dict[str, str]:
    """The header that presents an API key."""
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def api_keys(session: Session) -> dict[Role, str]:
    """One key per role (every department), created in the test's transaction."""
    return {role: create_key(session, f"test-{role.value}", role, None)[1] for role in Role}


@pytest.fixture
def make_app(database_url: str, engine: Engine, connection: Connection) -> Callable[..., FastAPI]:
    """Build an app whose requests run inside the test's rolled-back transaction."""

    def build(**overrides: object) -> FastAPI:
        app = create_app(settings_for(database_url, **overrides))
        app.state.engine = engine
        app.state.sessionmaker = make_sessionmaker(connection, join_transaction_mode="create_savepoint")
        return app

    return build


@pytest.fixture
def client(make_app: Callable[..., FastAPI], api_keys: dict[Role, str]) -> Iterator[TestClient]:
    """A client of the real app on the test's transaction, signed in as admin (tests of roles use their own)."""
    with TestClient(make_app(), raise_server_exceptions=False, headers=bearer(api_keys[Role.ADMIN])) as client:
        yield client


@pytest.fixture
def committing_app(database_url: str, engine: Engine) -> Iterator[FastAPI]:
    """An app that really commits (for concurrency and commit-failure tests); its rows are removed after."""
    app = create_app(settings_for(database_url))
    app.state.engine = engine
    app.state.sessionmaker = make_sessionmaker(engine)
    app.state.test_source_system = f"test-{uuid.uuid4().hex[:10]}"
    with make_sessionmaker(engine).begin() as session:
        key_name = f"committing-{app.state.test_source_system}"
        app.state.test_headers = bearer(create_key(session, key_name, Role.ADMIN, None)[1])
    yield app
    with engine.begin() as connection:
        connection.execute(delete(Report).where(Report.source_system == app.state.test_source_system))
        connection.execute(delete(ApiKey).where(ApiKey.name == key_name))
