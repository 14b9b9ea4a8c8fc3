"""The database goes away and comes back: 503 with Retry-After quickly, recovery on its own, nothing acked lost.

PostgreSQL only: the app reaches a database of its own on the machine's server through a TCP proxy
(tests/tcp_proxy.py) that the test cuts and restores; the server itself is never touched. What the app
acknowledged is checked on a direct connection to the real server, not through the proxy.
"""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from app.auth.keys import create_key
from app.auth.principal import Role
from app.db import make_engine, make_sessionmaker
from app.main import create_app
from app.migrate import upgrade
from app.registry import service as registry
from app.registry.bootstrap import default_model
from app.report.models import Report
from tests.conftest import PG_ENV, DatabaseFactory, bearer, settings_for
from tests.helpers import report
from tests.tcp_proxy import CutMode, TcpProxy

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.skipif(not os.environ.get(PG_ENV), reason=f"needs PostgreSQL ({PG_ENV})"),
]

# What "not a hang" means here: the check of a pooled connection (2 s), the connect timeout (3 s) and the
# pool's wait (5 s) are each a few seconds (app/db.py), so no answer during an outage may take longer.
OUTAGE_ANSWER_BOUND_S = 10.0
SOURCE = "faults"


@dataclass
class FaultRig:
    """A migrated database, a direct engine on it, a proxy in front of it and an admin key."""

    url: str
    direct: Engine
    proxy: TcpProxy
    headers: dict[str, str]

    def client(self, **overrides: object) -> TestClient:
        """A client of a fresh app whose database is the proxy (its own engine, as in production)."""
        proxied = make_url(self.url).set(host="127.0.0.1", port=self.proxy.port)
        app = create_app(settings_for(proxied.render_as_string(hide_password=False), **overrides))
        return TestClient(app, raise_server_exceptions=False, headers=self.headers)

    def stored(self, external_ids: list[str]) -> set[str]:
        """Which of these reports the real database holds (read past the proxy)."""
        with self.direct.connect() as connection:
            rows = connection.scalars(select(Report.external_id).where(
                Report.source_system == SOURCE, Report.external_id.in_(external_ids)))
            return set(rows)


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Engine, dict[str, str]]]:
    """A database of this module's own on the machine's PostgreSQL, migrated, with the model and a key."""
    factory = DatabaseFactory("postgresql", tmp_path_factory.mktemp("faults"))
    url = factory.new()
    upgrade(url)
    direct = make_engine(url)
    with make_sessionmaker(direct).begin() as session:
        model = default_model(settings_for(url).model_dir)
        registry.register(session, model, source="corpus")
        registry.activate_if_none(session, model.version, by="tests")
        key = create_key(session, "faults-admin", Role.ADMIN, None)[1]
    yield url, direct, bearer(key)
    direct.dispose()
    factory.drop_all()


@pytest.fixture
def rig(database: tuple[str, Engine, dict[str, str]]) -> Iterator[FaultRig]:
    """A fresh proxy to the module's database for each test."""
    url, direct, headers = database
    server = make_url(url)
    with TcpProxy(server.host or "127.0.0.1", server.port or 5432) as proxy:
        yield FaultRig(url=url, direct=direct, proxy=proxy, headers=headers)


def _ids(prefix: str, n: int) -> list[str]:
    run = uuid.uuid4().hex[:6]
    return [f"{prefix}-{run}-{i:03d}" for i in range(n)]


def _timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    start = time.monotonic()
    answer = call()
    return answer, time.monotonic() - start


def _assert_unavailable(answer: httpx.Response, seconds: float, what: str) -> None:
    assert answer.status_code == 503, f"{what}: {answer.status_code} {answer.text[:200]}"
    assert int(answer.headers["retry-after"]) > 0, what
    assert seconds < OUTAGE_ANSWER_BOUND_S, f"{what} took {seconds:.1f} s"


def _outage_calls(client: TestClient, body: dict[str, object]) -> dict[str, Callable[[], httpx.Response]]:
    return {
        "readyz": lambda: client.get("/readyz"),
        "POST report": lambda: client.post("/api/v1/reports", json=body),
        "POST batch": lambda: client.post("/api/v1/reports/batch", json={"reports": [body]}),
        "GET list": lambda: client.get("/api/v1/reports", params={"limit": 5}),
        "GET taxonomy": lambda: client.get("/api/v1/taxonomy"),
    }


@pytest.mark.parametrize("mode", ["refuse", "blackhole"])
def test_outage_is_503_quickly_recovers_by_itself_and_loses_nothing_acknowledged(
        rig: FaultRig, mode: CutMode) -> None:
    before, rejected = _ids(f"PRE-{mode}", 12), _ids(f"CUT-{mode}", 1)[0]
    acked: list[str] = []
    with rig.client() as client:
        for external_id in before[:8]:
            answer = client.post("/api/v1/reports", json=report(external_id, source_system=SOURCE))
            assert answer.status_code == 201, answer.text
            acked.append(external_id)
        batch = client.post("/api/v1/reports/batch",
                            json={"reports": [report(e, source_system=SOURCE) for e in before[8:]]})
        assert batch.status_code == 200 and batch.json()["counts"] == {"created": 4}
        acked += before[8:]
        assert client.get("/readyz").status_code == 200
        assert rig.proxy.live_connections() > 0  # the app holds pooled connections the cut will break

        rig.proxy.cut(mode)
        body = report(rejected, source_system=SOURCE)
        for what, call in _outage_calls(client, body).items():
            answer, seconds = _timed(call)
            _assert_unavailable(answer, seconds, f"{what} during a {mode} cut")
            if what != "readyz":
                assert answer.json()["error"] == "database_unavailable"
        assert rig.stored([rejected]) == set(), "a delivery answered 503 was stored"

        rig.proxy.restore()
        # Recovery without a restart: the pool's dead connections are replaced on the next checkout.
        first, seconds = _timed(lambda: client.get("/readyz"))
        assert first.status_code == 200 and seconds < OUTAGE_ANSWER_BOUND_S, first.text
        listed = client.get("/api/v1/reports", params={"limit": 500})
        assert listed.status_code == 200
        resent = client.post("/api/v1/reports", json=body)
        assert resent.status_code == 201, resent.text
        acked.append(rejected)

    assert rig.stored(acked) == set(acked)
    with rig.direct.connect() as connection:
        # Exactly one row each: the outage caused no duplicate and no half-written report.
        counts = connection.execute(select(Report.external_id, func.count()).where(
            Report.source_system == SOURCE, Report.external_id.in_(acked)).group_by(Report.external_id)).all()
    assert dict(counts) == dict.fromkeys(acked, 1)


def test_a_black_hole_behind_open_pooled_connections_is_503_within_the_bound(rig: FaultRig) -> None:
    # The peer goes silent on connections the pool already holds (nothing is closed, nothing answers):
    # each call's check of its pooled connection gives up after the ping timeout, the reconnect after the
    # connect timeout, and /readyz says so too.
    with rig.client() as client:
        for _ in range(3):
            assert client.get("/api/v1/reports", params={"limit": 5}).status_code == 200
        assert client.get("/readyz").status_code == 200
        pooled = rig.proxy.live_connections()
        assert pooled > 0
        rig.proxy.cut("blackhole", keep_open=True)
        assert rig.proxy.live_connections() == pooled  # open, but silent
        body = report(_ids("HOLE", 1)[0], source_system=SOURCE)
        for what, call in _outage_calls(client, body).items():
            answer, seconds = _timed(call)
            _assert_unavailable(answer, seconds, f"{what} behind a silent pooled connection")
        rig.proxy.restore()
        first, seconds = _timed(lambda: client.get("/readyz"))
        assert first.status_code == 200 and seconds < OUTAGE_ANSWER_BOUND_S, first.text
        assert client.post("/api/v1/reports", json=body).status_code == 201
    assert rig.stored([body["external_id"]]) == {body["external_id"]}


def test_a_statement_in_flight_when_the_peer_goes_silent_is_503_after_the_answer_timeout(rig: FaultRig) -> None:
    # The server has the statement when the black hole opens: no answer can come back. A live server
    # answers within its statement timeout, so the client waits that plus the ping timeout, then 503.
    statement_ms, ping_ms = 3_000, 1_000
    external_id = _ids("INFLIGHT", 1)[0]
    with rig.client(statement_timeout_ms=statement_ms, lock_timeout_ms=statement_ms,
                    database_ping_timeout_ms=ping_ms) as client:
        assert client.post("/api/v1/reports", json=report(external_id, source_system=SOURCE)).status_code == 201
        with rig.direct.connect() as blocker, ThreadPoolExecutor(max_workers=1) as pool:
            # Hold the report's row so that the update waits inside the server, then silence the network.
            blocker.execute(select(Report.id).where(Report.external_id == external_id).with_for_update())
            update = pool.submit(_timed, lambda: client.post("/api/v1/reports", json=report(
                external_id, source_system=SOURCE, source_version=2, status="endret")))
            time.sleep(0.5)
            rig.proxy.cut("blackhole", keep_open=True)
            blocker.rollback()
            answer, seconds = update.result(timeout=60)
        _assert_unavailable(answer, seconds, "an update in flight")
        assert seconds < (statement_ms + ping_ms) / 1000 + 2.0, seconds
        rig.proxy.restore()
        assert client.get("/readyz").status_code == 200
    with rig.direct.connect() as connection:
        # The silenced transaction never committed: the server rolled it back when its connection closed.
        status = connection.scalar(select(Report.status).where(Report.external_id == external_id))
    assert status == "registrert"


def test_a_burst_of_calls_into_a_black_hole_is_all_503_within_the_bound(rig: FaultRig) -> None:
    # More concurrent calls than the pool has connections (5 + 10 overflow): the ones that wait for
    # the pool must give up as quickly as the ones that wait for the network, and say so with 503.
    with rig.client() as client:
        assert client.get("/readyz").status_code == 200
        rig.proxy.cut("blackhole")

        def call(n: int) -> tuple[httpx.Response, float]:
            if n % 2:
                return _timed(lambda: client.get("/api/v1/reports", params={"limit": 5}))
            return _timed(lambda: client.post("/api/v1/reports", json=report(f"BURST-{n}", source_system=SOURCE)))

        start = time.monotonic()
        with ThreadPoolExecutor(max_workers=24) as pool:
            answers = list(pool.map(call, range(24)))
        wall = time.monotonic() - start
        statuses = Counter(a.status_code for a, _ in answers)
        assert statuses == {503: 24}, statuses
        for answer, seconds in answers:
            _assert_unavailable(answer, seconds, "a call in the burst")

        rig.proxy.restore()
        assert client.get("/readyz").status_code == 200
        assert client.get("/api/v1/reports", params={"limit": 5}).status_code == 200
    assert wall < 2 * OUTAGE_ANSWER_BOUND_S
    assert rig.stored([f"BURST-{n}" for n in range(0, 24, 2)]) == set()


def test_a_call_that_cannot_get_a_pooled_connection_is_503_not_500(rig: FaultRig) -> None:
    # A pool of one: while one call waits for the black-holed database, the next one's wait for the
    # pool runs out (SQLAlchemy's pool TimeoutError), which is the same outage and the same answer.
    with rig.client() as client:
        proxied = make_url(rig.url).set(host="127.0.0.1", port=rig.proxy.port)
        engine = make_engine(proxied.render_as_string(hide_password=False), pool_size=1, max_overflow=0,
                             pool_timeout=0.5)
        client.app.state.engine, client.app.state.sessionmaker = engine, make_sessionmaker(engine)  # type: ignore[attr-defined]
        try:
            assert client.get("/api/v1/reports", params={"limit": 1}).status_code == 200
            rig.proxy.cut("blackhole")
            with ThreadPoolExecutor(max_workers=3) as pool:
                answers = list(pool.map(lambda _: _timed(lambda: client.get("/api/v1/taxonomy")), range(3)))
            for answer, seconds in answers:
                _assert_unavailable(answer, seconds, "a call waiting for the pool")
            # The calls that never got a connection gave up after the pool timeout, not the connect timeout.
            assert min(seconds for _, seconds in answers) < 2.0
        finally:
            engine.dispose()


def test_a_cut_in_the_middle_of_a_batch_writes_none_of_it_and_the_batch_can_be_resent(rig: FaultRig) -> None:
    size = 200
    with rig.client() as client:
        # Measure what a batch of this shape sends to the server, then cut halfway through an
        # identical one: the cut lands inside its transaction, before the commit.
        rehearsal = [report(e, source_system=SOURCE) for e in _ids("REHEARSAL", size)]
        sent_before = rig.proxy.bytes_to_server
        assert client.post("/api/v1/reports/batch", json={"reports": rehearsal}).status_code == 200
        batch_bytes = rig.proxy.bytes_to_server - sent_before
        assert batch_bytes > 10_000, batch_bytes

        ids = _ids("MID", size)
        batch = {"reports": [report(e, source_system=SOURCE) for e in ids]}
        rig.proxy.cut_after(batch_bytes // 2)
        answer, seconds = _timed(lambda: client.post("/api/v1/reports/batch", json=batch))
        assert rig.proxy.is_cut, "the batch finished before the armed cut fired"
        _assert_unavailable(answer, seconds, "a batch cut in the middle")
        assert rig.stored(ids) == set(), "half a batch was written"

        rig.proxy.restore()
        again = client.post("/api/v1/reports/batch", json=batch)
        assert again.status_code == 200, again.text
        assert again.json()["counts"] == {"created": size}
    assert rig.stored(ids) == set(ids)


def test_the_proxy_forwards_cuts_and_restores(rig: FaultRig) -> None:
    # The rig itself: a connection through the proxy works, a cut breaks it at once, a restore mends it.
    proxied = make_url(rig.url).set(host="127.0.0.1", port=rig.proxy.port)
    engine = make_engine(proxied.render_as_string(hide_password=False))
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("select 1").scalar() == 1
            rig.proxy.cut("refuse")
            with pytest.raises(OperationalError):
                connection.exec_driver_sql("select 1").scalar()
        with pytest.raises(OperationalError):
            engine.connect().close()
        rig.proxy.restore()
        with engine.connect() as connection:
            assert connection.exec_driver_sql("select 1").scalar() == 1
    finally:
        engine.dispose()
