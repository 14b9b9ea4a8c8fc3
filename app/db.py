"""Database engine, declarative base and the one-transaction-per-request session dependency."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import DateTime, Engine, MetaData, create_engine, event, text
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

SQLITE_BEGIN = "avvik_sqlite_begin"

# PostgreSQL: how long to wait for a new connection, and for a free one in the pool, before answering 503.
PG_CONNECT_TIMEOUT_S = 3
PG_POOL_TIMEOUT_S = 5.0

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base whose constraints get stable names, so migrations can refer to them."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime stored as UTC on every engine (SQLite has no time zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine with the per-dialect settings this service relies on."""
    # Statement parameters hold free text about children: keep them out of error messages and logs.
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)
        _configure_sqlite(engine)
        return engine
    # A database that does not answer must not hold a request for minutes (the kernel's TCP retries
    # alone take over two): connecting and waiting for a pooled connection each give up after a few
    # seconds, and the error handlers answer 503 with Retry-After (tests/app/test_faults.py).
    connect_args: dict[str, Any] = kwargs.pop("connect_args", {})
    if "connect_timeout" not in make_url(url).query:
        connect_args.setdefault("connect_timeout", PG_CONNECT_TIMEOUT_S)
    kwargs.setdefault("pool_timeout", PG_POOL_TIMEOUT_S)
    kwargs.setdefault("pool_pre_ping", True)  # replace connections a restart or network cut has broken
    return create_engine(url, connect_args=connect_args, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    # pysqlite's own transaction handling is switched off so that we issue BEGIN ourselves: a writing
    # transaction asks for BEGIN IMMEDIATE (see begin_session), taking the write lock before it reads,
    # so two upserts serialise instead of failing on a stale WAL snapshot. Probes and other
    # connections that only read stay DEFERRED and never wait for a writer.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()
        # Case-insensitive search must fold æ, ø and å too; SQLite's lower() folds only ASCII.
        dbapi_connection.create_function("casefold", 1, _casefold, deterministic=True)

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get(SQLITE_BEGIN, "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


def _casefold(value: str | None) -> str | None:
    return value.casefold() if value is not None else None


@contextmanager
def begin_session(maker: sessionmaker[Session], writes: bool) -> Iterator[Session]:
    """A transaction; one that writes takes SQLite's write lock up front (ignored elsewhere)."""
    with maker.begin() as session:
        if writes:
            session.connection(execution_options={SQLITE_BEGIN: "IMMEDIATE"})
        yield session


def get_session(request: Request) -> Iterator[Session]:
    """One transaction per request, committed before the response is sent."""
    # Reads of free text write an audit row, so every API request may write.
    with begin_session(request.app.state.sessionmaker, writes=True) as session:
        if session.get_bind().dialect.name == "postgresql":
            # No statement of one request may run unbounded; a cancelled one answers 503.
            timeout = int(request.app.state.settings.statement_timeout_ms)
            session.execute(text(f"SET LOCAL statement_timeout = {timeout}"))
        yield session


def make_sessionmaker(bind: Any, **kwargs: Any) -> sessionmaker[Session]:
    """The session factory the app uses; expire_on_commit off so answers can be shaped after commit."""
    return sessionmaker(bind=bind, expire_on_commit=False, **kwargs)


# scope="function": the dependency's exit (the commit) runs before the response is sent, so a failed
# commit becomes an error response instead of a 200 for a report that was never stored.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
