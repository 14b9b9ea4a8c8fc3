"""Request logs, metrics and traces an operator can use, and that never carry free text, a query string or an
identity number."""

from __future__ import annotations

import io
import json
import logging
import logging.config
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import Session

from app.auth.principal import Role
from app.main import create_app
from app.observability.logs import JsonLineFormatter, log_error, logging_config
from app.review import service as review_service
from classifier import TrainedModel
from tests.conftest import bearer, settings_for
from tests.helpers import report

IDENTITY_NUMBER = "12345678901"  # eleven digits; redaction is not what this test is about, logs are
SECRET_WORDS = ("Nordmann", "kontaktforbud", IDENTITY_NUMBER, "Ola+", "q=")
METRICS_TOKEN = "metrics-test-token"
GLOBAL_EXPORTER = InMemorySpanExporter()  # the process-wide provider's, set by the first test that needs it


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """Every log line of the process, as the JSON formatter writes it, while the test runs."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLineFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    quiet = logging.getLogger("httpx")  # the test client's own request lines, kept down as the service's config does
    quiet_level = quiet.level
    quiet.setLevel(logging_config("json", "INFO")["loggers"]["httpx"]["level"])
    yield stream
    root.removeHandler(handler)
    root.setLevel(old_level)
    quiet.setLevel(quiet_level)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def secret_requests(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests with identity numbers and free text in the body, the path, the query and a header, one
    of which makes the classifier fail with an exception whose message quotes the text."""
    secret = f"Ola Nordmann {IDENTITY_NUMBER} har kontaktforbud"
    client.get("/api/v1/reports", params={"q": secret})
    client.get(f"/api/v1/reports/by-external/bkkvalitet/{IDENTITY_NUMBER}")
    client.get("/api/v1/reports", params={"unit": secret}, headers={"X-Request-ID": IDENTITY_NUMBER})
    client.post("/api/v1/reports", json=report("LOG-1", title=secret, description=secret))
    real_predict = TrainedModel.predict

    def predict(self: TrainedModel, reports: Any, *args: Any, **kwargs: Any) -> Any:
        if any("kontaktforbud" in r.description for r in reports):
            # A classifier bug whose message quotes its input, as parsers' messages do.
            raise ValueError(f"cannot read {reports[0].description!r}")
        return real_predict(self, reports, *args, **kwargs)

    monkeypatch.setattr(TrainedModel, "predict", predict)
    client.post("/api/v1/reports", json=report("LOG-2", title="Ny melding", description=secret))
    client.post("/api/v1/reports", content=b'{"title": "' + secret.encode() + b'"',
                headers={"Content-Type": "application/json"})


def test_one_json_line_per_request_and_no_text_in_any_line(client: TestClient, log_output: io.StringIO,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    secret_requests(client, monkeypatch)
    written = log_output.getvalue()
    for word in SECRET_WORDS:
        assert word not in written, f"{word!r} reached the log"
    records = lines(log_output)
    requests = [r for r in records if r["logger"] == "avvik.request"]
    assert len(requests) == 6
    first = requests[0]
    assert {"time", "level", "request_id", "method", "route", "status", "duration_ms", "bytes", "actor",
            "roles"} <= set(first)
    assert (first["method"], first["route"], first["status"]) == ("GET", "/api/v1/reports", 200)
    assert first["actor"] == "key:test-admin" and first["roles"] == ["admin"]
    assert requests[1]["route"] == "/api/v1/reports/by-external/{source_system}/{external_id}"
    assert requests[3]["status"] == 201 and requests[5]["status"] == 422
    # The classifier's failure is logged, by type and stack, as JSON too.
    failure = [r for r in records if "classifier failed" in r["message"]]
    assert failure and failure[0]["error_type"] == "ValueError" and failure[0]["level"] == "ERROR"


def test_a_caller_request_id_holding_an_identity_number_is_replaced(client: TestClient) -> None:
    answer = client.get("/healthz", headers={"X-Request-ID": IDENTITY_NUMBER})
    assert IDENTITY_NUMBER not in answer.headers["X-Request-ID"]
    assert client.get("/healthz", headers={"X-Request-ID": "bk-2026-retry-3"}).headers["X-Request-ID"] == \
        "bk-2026-retry-3"


def test_no_formatter_writes_an_exception_message() -> None:
    config = logging_config("json", "INFO")
    assert config["loggers"]["uvicorn.access"]["propagate"] is False  # its lines hold raw paths and queries
    stream = io.StringIO()
    logger = logging.getLogger("avvik.test-formatter")
    handler = logging.StreamHandler(stream)
    quoted = " ".join(["Ola", "Nord" + "mann", IDENTITY_NUMBER])  # what an exception message may quote
    for formatter in ("app.observability.logs.JsonLineFormatter", "app.observability.logs.TextFormatter"):
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False,
                                   "formatters": {"f": {"()": formatter}}, "handlers": {}, "loggers": {}})
        module, name = formatter.rsplit(".", 1)
        handler.setFormatter(getattr(__import__(module, fromlist=[name]), name)())
        logger.addHandler(handler)
        try:
            raise KeyError(quoted)
        except KeyError as exc:
            logger.exception("a library logged this")  # as uvicorn and libraries do
            log_error(logger, "our own helper", exc)
        logger.removeHandler(handler)
    written = stream.getvalue()
    assert "KeyError" in written and "test_no_formatter_writes_an_exception_message" in written
    assert IDENTITY_NUMBER not in written and "Nordmann" not in written


def scrape(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = client.get("/metrics", headers=bearer(METRICS_TOKEN))
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(answer.text) for sample in family.samples}


def delta(after: dict[Any, float], before: dict[Any, float], name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


def test_metrics_count_a_known_sequence(make_app: Callable[..., FastAPI], api_keys: dict[Role, str],
                                        session: Session) -> None:
    app = make_app(metrics_token=METRICS_TOKEN, review_backlog_cache_seconds=0)
    with TestClient(app, headers=bearer(api_keys[Role.ADMIN])) as client:
        before = scrape(client)
        assert client.post("/api/v1/reports", json=report("MET-1")).status_code == 201
        assert client.post("/api/v1/reports", json=report("MET-1")).status_code == 200  # unchanged
        flagged = report("MET-2", reported_category="Annet", target_groups=[], services_involved=[],
                         title="Barnevernet ga ikke tilbakemelding til barnehagen",
                         description="Barnehagen sendte bekymringsmelding, men barnevernet svarte aldri.")
        batch = client.post("/api/v1/reports/batch", json={"reports": [
            flagged, report("MET-3"), report("MET-4", target_groups=["not-a-code"])]}).json()
        assert [r["outcome"] for r in batch["results"]] == ["created", "created", "invalid"]
        assert client.post(f"/api/v1/reports/{batch['results'][0]['id']}/review",
                           json={"decision": "is_case"}).status_code == 201
        assert client.get("/api/v1/reports", params={"limit": 0}).status_code == 422
        after = scrape(client)
    assert delta(after, before, "avvik_ingest_reports_total", outcome="created") == 3
    assert delta(after, before, "avvik_ingest_reports_total", outcome="unchanged") == 1
    assert delta(after, before, "avvik_ingest_reports_total", outcome="invalid") == 1
    assert delta(after, before, "avvik_reviews_total", decision="is_case") == 1
    assert delta(after, before, "avvik_http_requests_total", route="/api/v1/reports", method="POST",
                 status="201") == 1
    assert delta(after, before, "avvik_http_requests_total", route="/api/v1/reports", method="GET",
                 status="422") == 1
    assert delta(after, before, "avvik_http_request_duration_seconds_count", route="/api/v1/reports/batch",
                 method="POST") == 1
    assert delta(after, before, "avvik_scored_reports_total") == 3  # the unchanged and the invalid are not scored
    flagged_waiting, sample_waiting = review_service.queue_backlog(session, app.state.settings.audit_sample_share)
    assert after[("avvik_review_queue_length", ())] == flagged_waiting
    assert after[("avvik_audit_sample_backlog", ())] == sample_waiting
    versions = [labels for (name, labels), value in after.items() if name == "avvik_active_model_info" and value == 1]
    assert versions and dict(versions[0])["version"]


def test_metrics_need_their_own_key(make_app: Callable[..., FastAPI], api_keys: dict[Role, str]) -> None:
    with TestClient(make_app(metrics_token=METRICS_TOKEN)) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers=bearer(api_keys[Role.ADMIN])).status_code == 401
    with TestClient(make_app()) as client:  # no key configured: there is no /metrics
        assert client.get("/metrics", headers=bearer(METRICS_TOKEN)).status_code == 404


def test_spans_leave_the_process_without_query_path_or_messages(make_app: Callable[..., FastAPI],
                                                                database_url: str, api_keys: dict[Role, str],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    exporter = InMemorySpanExporter()
    app = create_app(settings_for(database_url, tracing_enabled=True), span_exporter=exporter)
    test_app = make_app()
    app.state.engine, app.state.sessionmaker = test_app.state.engine, test_app.state.sessionmaker
    with TestClient(app, raise_server_exceptions=False, headers=bearer(api_keys[Role.ADMIN])) as client:
        secret_requests(client, monkeypatch)
    app.state.tracer_provider.force_flush()
    spans = exporter.get_finished_spans()
    assert any(s.attributes.get("http.route") == "/api/v1/reports" for s in spans)  # traced, and usefully
    exported = repr([(s.name, dict(s.attributes), [(e.name, dict(e.attributes)) for e in s.events],
                      s.status.description) for s in spans])
    for word in SECRET_WORDS:
        assert word not in exported, f"{word!r} left the process in a span"
    assert "url.query" not in exported and "url.path" not in exported


def test_a_global_tracer_provider_does_not_switch_fastapis_own_tracing_on(
        client: TestClient) -> None:
    """FastAPI traces into any global provider, with url.query verbatim; the app configures it explicitly."""
    exporter = GLOBAL_EXPORTER
    exporter.clear()
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)  # what an operator's auto-instrumentation would do (once a process)
    # The leak is real: a plain FastAPI app under that provider exports the query string.
    bare = FastAPI()

    @bare.get("/search")
    def search(q: str) -> dict[str, str]:
        return {"q": q}

    with TestClient(bare) as plain:
        plain.get("/search", params={"q": "Ola Nordmann"})
    assert any("Nordmann" in str(s.attributes.get("url.query")) for s in exporter.get_finished_spans())
    exporter.clear()
    client.get("/api/v1/reports", params={"q": f"Ola Nordmann {IDENTITY_NUMBER}"})
    assert exporter.get_finished_spans() == ()


def exposed_names() -> set[str]:
    """Every series name the service can expose: its metric objects' and the database gauges'."""
    from prometheus_client import Counter, Gauge, Histogram

    from app.observability import metrics

    suffixes = {Counter: ("_total",), Histogram: ("_bucket", "_count", "_sum"), Gauge: ("",)}
    names = {"avvik_review_queue_length", "avvik_audit_sample_backlog", "avvik_active_model_info"}
    for value in vars(metrics).values():
        for kind, endings in suffixes.items():
            if isinstance(value, kind):
                names |= {value._name + ending for ending in endings}
    return names


def test_dashboard_and_alerts_use_only_metrics_the_service_serves() -> None:
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "ops"
    dashboard = json.loads((root / "grafana-dashboard.json").read_text(encoding="utf-8"))
    expressions = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    alerts = (root / "alerts.yml").read_text(encoding="utf-8")
    used = set(re.findall(r"\bavvik_[a-z_]+", expressions + alerts))
    assert used and used <= exposed_names(), used - exposed_names()
    assert len(dashboard["panels"]) >= 8
