"""GET /metrics: Prometheus' scrape, behind a key of its own (a monitoring system is not an API client)."""

from __future__ import annotations

import hmac
import threading
import time

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy.orm import Session, sessionmaker

from app.db import SessionMakerDep
from app.dependencies import SettingsDep
from app.errors import NotFound, Unauthenticated
from app.observability import metrics
from app.registry import service as registry
from app.review import service as review
from app.settings import Settings

router = APIRouter(tags=["operations"])
Gauges = dict[str, tuple[str, float, dict[str, str]]]


class GaugeCache:
    """The last database gauges of this process and when they were read (scrapes come every few seconds)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.read_at = -float("inf")
        self.gauges: Gauges = {}


@router.get("/metrics", include_in_schema=False)
def get_metrics(request: Request, settings: SettingsDep, maker: SessionMakerDep) -> Response:
    """Counters of this service (all workers) and the review backlog, in the Prometheus text format."""
    if settings.metrics_token is None:
        raise NotFound("not found")
    expected = f"Bearer {settings.metrics_token.get_secret_value()}".encode()
    given = request.headers.get("authorization", "").encode()
    if not hmac.compare_digest(given, expected):
        raise Unauthenticated("the metrics key is missing or wrong", headers={"WWW-Authenticate": "Bearer"})
    cache: GaugeCache = request.app.state.metrics_gauges
    return Response(metrics.exposition(database_gauges(settings, cache, maker)), media_type=CONTENT_TYPE_LATEST)


def database_gauges(settings: Settings, cache: GaugeCache, maker: sessionmaker[Session]) -> Gauges:
    """The backlog and the active model, read at most every `review_backlog_cache_seconds` per process."""
    with cache.lock:
        if time.monotonic() - cache.read_at < settings.review_backlog_cache_seconds:
            return cache.gauges
        with maker.begin() as session:
            flagged, sample = review.queue_backlog(session, settings.audit_sample_share)
            version = registry.active_version(session)
        gauges: Gauges = {
            "avvik_review_queue_length": ("Flagged reports waiting for a first review", flagged, {}),
            "avvik_audit_sample_backlog": ("Audit-sample reports waiting for a first review", sample, {}),
            "avvik_active_model_info": ("The active model version (value 1)", 1 if version else 0,
                                        {"version": version or ""}),
        }
        cache.read_at, cache.gauges = time.monotonic(), gauges
        return gauges
