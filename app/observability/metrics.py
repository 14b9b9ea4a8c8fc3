"""Prometheus metrics: what the service did (counters and histograms, kept per process and summed across
uvicorn workers) and what the database holds now (gauges read when scraped).

Labels are route templates, methods, status codes, outcomes and kinds: never a raw path, a query string, a
report id or any text. Counts that describe stored data (ingest outcomes, reviews) are added only once the
answer is a success, i.e. after the commit, so a failed commit is not counted as a stored report.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, MutableMapping
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, event

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

REQUESTS = Counter("avvik_http_requests", "HTTP requests answered", ["route", "method", "status"])
REQUEST_SECONDS = Histogram("avvik_http_request_duration_seconds", "Time to answer an HTTP request (to the last "
                            "byte of the body)", ["route", "method"], buckets=_LATENCY_BUCKETS)
INGESTED = Counter("avvik_ingest_reports", "Delivered reports by outcome, counted once the answer is committed",
                   ["outcome"])
SCORING_SECONDS = Histogram("avvik_scoring_duration_seconds", "Time the classifier took for one call (one "
                            "report or one batch)", buckets=_LATENCY_BUCKETS)
SCORED = Counter("avvik_scored_reports", "Reports the classifier scored")
SCORING_FAILURES = Counter("avvik_scoring_failures", "Reports the classifier failed on (stored unscored)")
REVIEWS = Counter("avvik_reviews", "Adviser decisions recorded, counted once committed", ["decision"])
REDACTIONS = Counter("avvik_redactions", "Identity numbers, phone numbers and e-mail addresses removed from "
                     "delivered text", ["kind"])
POOL_IN_USE = Gauge("avvik_db_pool_connections_in_use", "Database connections checked out of the pool",
                    multiprocess_mode="livesum")


_DEFERRED = "avvik.deferred_metrics"


def defer(scope: MutableMapping[str, Any], counter: Counter, amount: float = 1, **labels: str) -> None:
    """Count something once the request's answer is a success (the request middleware adds it then)."""
    scope.setdefault(_DEFERRED, []).append((counter, labels, amount))


def apply_deferred(scope: MutableMapping[str, Any], succeeded: bool) -> None:
    """Add what `defer` held back, if the request succeeded (a 2xx or 3xx means committed)."""
    for counter, labels, amount in scope.pop(_DEFERRED, ()) if succeeded else ():
        (counter.labels(**labels) if labels else counter).inc(amount)


def watch_pool(engine: Engine) -> None:
    """Keep the in-use gauge of the engine's pool current."""
    event.listen(engine, "checkout", lambda *_: POOL_IN_USE.inc())
    event.listen(engine, "checkin", lambda *_: POOL_IN_USE.dec())


class DatabaseGauges(Collector):
    """Gauges read from the database when scraped (the backlog an operator alerts on)."""

    def __init__(self, values: dict[str, tuple[str, float, dict[str, str]]]) -> None:
        self.values = values

    def collect(self) -> Iterator[Metric]:
        for name, (documentation, value, labels) in self.values.items():
            family = GaugeMetricFamily(name, documentation, labels=list(labels))
            family.add_metric(list(labels.values()), value)
            yield family


def exposition(database_gauges: dict[str, tuple[str, float, dict[str, str]]]) -> bytes:
    """The metrics of every worker (in multi-process mode) or of this process, then the database gauges."""
    if os.environ.get(MULTIPROCESS_ENV):
        workers = CollectorRegistry()
        multiprocess.MultiProcessCollector(workers)
        counted = generate_latest(workers)
    else:
        counted = generate_latest(REGISTRY)
    now = CollectorRegistry()
    now.register(DatabaseGauges(database_gauges))
    return counted + generate_latest(now)
