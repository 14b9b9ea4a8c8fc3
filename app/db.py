"""Database engine, declarative base and the one-transaction-per-request session dependency."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import psycopg
from fastapi import Depends, Request
from sqlalchemy import DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

SQLITE_BEGIN = "avvik_sqlite_begin"
WRITES = "avvik_writes"  # Session.info key: the session's transaction writes (SQLite: BEGIN IMMEDIATE)

# PostgreSQL: how long to wait for a new connection, and for a free one in the pool, before answering 503.
PG_CONNECT_TIMEOUT_S = 3
PG_POOL_TIMEOUT_S = 5.0
# The kernel's side of a dead peer on an open connection: keepalive probes after 5 s of silence, and
# data unacknowledged for 10 s (or probes unanswered as long) closes the connection. Without these a
# connection whose peer vanished waits for the kernel's retransmissions, about fifteen minutes.
PG_TCP = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 1, "keepalives_count": 5,
          "tcp_user_timeout": 10_000}


@dataclass(frozen=True)
class RoundTripLimits:
    """How long the server may work on one statement, and how long the client waits for any answer."""

    statement_timeout_ms: int
    lock_timeout_ms: int
    ping_timeout_ms: int

    @property
    def answer_timeout_s(self) -> float:
        """A live server answers within its statement timeout (it cancels the statement there), so no
        answer by then plus a ping's time means the peer is gone, even when TCP still looks alive (a
        proxy or gateway between us and a dead server keeps acknowledging)."""
        return (self.statement_timeout_ms + self.ping_timeout_ms) / 1000


class BoundedConnection(psycopg.Connection[Any]):
    """A psycopg connection on which every round trip has a deadline; past it the connection is closed."""

    answer_timeout: float | None = None  # seconds for any statement's answer; None: unbounded
    ping_timeout: float | None = None  # seconds for the check of a pooled connection on checkout
    checking = False  # the next round trip is that check

    def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        """psycopg's wait for the server, with this connection's deadline unless the caller gave one."""
        if timeout is None:
            timeout = self.ping_timeout if self.checking else self.answer_timeout
        try:
            return super().wait(gen, interval=interval, timeout=timeout)
        except psycopg.errors._WaitTimeout as exc:
            # The protocol is mid-conversation: the connection cannot be reused. Closed, it is seen as a
            # disconnect, invalidated by the pool and answered 503.
            self.pgconn.finish()
            raise psycopg.OperationalError(f"the database did not answer within {timeout:g} s") from exc

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


def make_engine(url: str, limits: RoundTripLimits | None = None, **kwargs: Any) -> Engine:
    """Create an engine with the per-dialect settings this service relies on; with `limits` (the
    server's engine), every PostgreSQL statement and round trip is bounded (commands run unbounded)."""
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
    query = make_url(url).query
    for name, value in {"connect_timeout": PG_CONNECT_TIMEOUT_S, **PG_TCP}.items():
        if name not in query:
            connect_args.setdefault(name, value)
    kwargs.setdefault("pool_timeout", PG_POOL_TIMEOUT_S)
    kwargs.setdefault("pool_pre_ping", True)  # replace connections a restart or network cut has broken
    engine = create_engine(url, connect_args=connect_args, **kwargs)
    if limits is not None:
        _bound_round_trips(engine, limits)
    return engine


def _bound_round_trips(engine: Engine, limits: RoundTripLimits) -> None:
    @event.listens_for(engine, "do_connect")
    def _connect(_dialect: Any, _record: Any, cargs: Any, cparams: Any) -> BoundedConnection:
        connection = BoundedConnection.connect(*cargs, **cparams)
        connection.answer_timeout, connection.ping_timeout = limits.answer_timeout_s, limits.ping_timeout_ms / 1000
        # Server side, for every statement on this connection (requests, streamed exports, probes): a
        # statement or a wait for a lock that runs too long is cancelled and answered 503 with its reason.
        connection.execute("SELECT set_config('statement_timeout', %s, false), set_config('lock_timeout', %s, false)",
                           (str(limits.statement_timeout_ms), str(limits.lock_timeout_ms)))
        connection.commit()
        return connection

    # The pool checks a connection with a ping before handing it out (pool_pre_ping, before "checkout"):
    # a live server answers a ping at once, so that round trip gets the short deadline.
    @event.listens_for(engine, "checkin")
    def _checked_in(dbapi_connection: Any, _record: Any) -> None:
        if isinstance(dbapi_connection, BoundedConnection):
            dbapi_connection.checking = True

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if isinstance(dbapi_connection, BoundedConnection):
            dbapi_connection.checking = False


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


class AppSession(Session):
    """A session that takes its connection at its first statement, as SQLAlchemy's sessions do; one
    marked as writing gets it in SQLite's write mode (BEGIN IMMEDIATE) at that moment."""

    def get_bind(self, *args: Any, **kwargs: Any) -> Any:
        """The configured bind; for a writing session on an engine, the same engine in write mode."""
        bind = super().get_bind(*args, **kwargs)
        if not self.info.get(WRITES) or not isinstance(bind, Engine) or bind.dialect.name != "sqlite":
            return bind
        # Kept on the engine (a reference cycle the collector frees with it), made once per engine.
        writing: Engine | None = bind.__dict__.get("_avvik_writing")
        if writing is None:
            writing = bind.__dict__["_avvik_writing"] = bind.execution_options(**{SQLITE_BEGIN: "IMMEDIATE"})
        return writing


@contextmanager
def begin_session(maker: sessionmaker[Session], writes: bool) -> Iterator[Session]:
    """A transaction, connected at its first statement; one that writes takes SQLite's write lock then,
    before it reads (ignored elsewhere)."""
    with maker.begin() as session:
        session.info[WRITES] = writes
        yield session


def get_session(request: Request) -> Iterator[Session]:
    """One transaction per request, committed before the response is sent."""
    # Reads of free text write an audit row, so every API request may write. No connection is taken
    # until the first statement: a caller authenticated by token, or waiting for the identity provider's
    # keys, holds none (and on SQLite, not the write lock).
    with begin_session(request.app.state.sessionmaker, writes=True) as session:
        yield session


def make_sessionmaker(bind: Any, **kwargs: Any) -> sessionmaker[Session]:
    """The session factory the app uses; expire_on_commit off so answers can be shaped after commit."""
    return sessionmaker(bind=bind, class_=AppSession, expire_on_commit=False, **kwargs)


def get_sessionmaker(request: Request) -> sessionmaker[Session]:
    """The app's session factory, for what reads after the request's transaction (streamed exports)."""
    maker: sessionmaker[Session] = request.app.state.sessionmaker
    return maker


SessionMakerDep = Annotated[sessionmaker[Session], Depends(get_sessionmaker)]

# scope="function": the dependency's exit (the commit) runs before the response is sent, so a failed
# commit becomes an error response instead of a 200 for a report that was never stored.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
