"""The application factory: settings, database, routers and error handling."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi import Depends, FastAPI
from fastapi.routing import APIRoute
from opentelemetry.sdk.trace.export import SpanExporter
from sqlalchemy.exc import SQLAlchemyError

from app import health
from app.audit.router import router as audit_router
from app.auth.oidc import JwksCache
from app.auth.ratelimit import RateLimiter
from app.db import RoundTripLimits, make_engine, make_sessionmaker
from app.docs import install_docs
from app.errors import error_responses, install_error_handlers
from app.ingest.router import router as ingest_router
from app.middleware import (
    BodyLimitMiddleware,
    NulInUrlMiddleware,
    RequestIdMiddleware,
    ResponseHeadersMiddleware,
)
from app.migrate import head_revisions
from app.observability import metrics
from app.observability.requests import RequestObservationMiddleware
from app.observability.router import GaugeCache
from app.observability.router import router as metrics_router
from app.observability.tracing import telemetry_config
from app.pagination import cursor_key
from app.query import single_valued_query
from app.registry.cache import ActiveModelCache
from app.registry.router import router as models_router
from app.report.router import router as report_router
from app.review.router import router as review_router
from app.settings import Settings
from app.stats.router import router as stats_router
from app.stats.router import similar_router
from app.taxonomy.router import router as taxonomy_router
from app.web.assets import Assets
from app.web.router import install_not_found_page
from app.web.router import router as web_router
from app.web.security import PageHeadersMiddleware

logger = logging.getLogger("avvik")


def operation_id(route: APIRoute) -> str:
    """Stable operation ids from the handler names, so generated clients read well."""
    return route.name


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Own the engine for the life of the process (unless a test handed one in)."""
    settings: Settings = app.state.settings
    owns_engine = getattr(app.state, "engine", None) is None
    if owns_engine:
        limits = RoundTripLimits(settings.statement_timeout_ms, settings.lock_timeout_ms,
                                 settings.database_ping_timeout_ms)
        app.state.engine = make_engine(settings.database_url, limits)
        app.state.sessionmaker = make_sessionmaker(app.state.engine)
        app.state.read_sessionmaker = app.state.sessionmaker
        if settings.metrics_enabled:
            metrics.watch_pool(app.state.engine)
    preload_model(app)
    if settings.gc_freeze:
        freeze_long_lived()
    try:
        yield
    finally:
        if owns_engine:
            app.state.engine.dispose()


def preload_model(app: FastAPI) -> None:
    """Load the active model before the first request, so that it does not pay for unpacking it.

    Loading only: a database without an active model stays so (reports are stored unscored until
    `avvik model ensure`), and one that cannot be reached now is retried by the first request.
    """
    if app.state.models is None:
        return
    try:
        with app.state.sessionmaker() as session:
            app.state.models.get(session)
    except SQLAlchemyError:
        logger.warning("the active model could not be read at start-up; the first request will try again")


def freeze_long_lived() -> None:
    """Move what exists now (modules, routes, schemas) out of the collector's sight.

    Everything built at start-up lives as long as the process, yet every full collection walked it again:
    ingest allocates many short-lived objects, so full collections come often, and profiles of batch
    ingest showed them costing a tenth of its time. Frozen objects are still freed by reference counting;
    only cycles among them would outlive their use, and start-up objects are not released anyway. Test
    suites that build an app per test turn it off (`gc_freeze`), or every app's cycles would stay.
    """
    gc.collect()
    gc.freeze()


def create_app(settings: Settings | None = None, span_exporter: SpanExporter | None = None) -> FastAPI:
    """Build the application; nothing connects to the database until the first request. Spans go to
    `span_exporter` when given (tests), else over OTLP, and only with `tracing_enabled`."""
    settings = settings or Settings()
    app = FastAPI(
        title="Avvik API",
        summary="Collaboration deviations about children and youth: ingest, filter, review, analyse.",
        version="0.1.0",
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
        # /docs is served from the package (app.docs); with docs off, the spec is hidden too.
        docs_url=None,
        redoc_url=None,
        # Always explicit: FastAPI would otherwise trace into any global provider with raw paths and queries.
        telemetry=(telemetry := telemetry_config(settings.tracing_enabled, settings.tracing_service_name,
                                                 span_exporter)),
        openapi_url="/openapi.json" if settings.docs_enabled else None,
    )
    app.state.tracer_provider = telemetry.get("tracer_provider")
    app.state.settings = settings
    app.state.engine = None
    # Sessions for reads that may run beside a request's own transaction, each on a connection of its own (the
    # statistics page); None (a test's app on one connection): such reads run in the request's session.
    app.state.read_sessionmaker = None
    # The active model lives in the database (so replicas agree); this process caches it.
    app.state.models = (
        ActiveModelCache(Path(settings.model_dir).parent / "registry", freeze=settings.gc_freeze)
        if settings.scoring_enabled else None
    )
    app.state.local_tz = ZoneInfo(settings.local_timezone)
    app.state.head_revisions = head_revisions(settings.database_url)
    app.state.rate_limiter = RateLimiter(settings.rate_limit_per_minute)
    app.state.metrics_gauges = GaugeCache()
    secret = settings.cursor_secret.get_secret_value() if settings.cursor_secret else None
    app.state.cursor_key = cursor_key(secret, settings.database_url)
    app.state.single_valued_query = {}  # (method, path) -> its one-value query parameters (app.query)
    app.state.jwks = (
        JwksCache(settings.oidc_jwks_url, settings.jwks_cache_seconds, settings.jwks_min_refetch_seconds,
                  settings.jwks_timeout_seconds)
        if settings.oidc_jwks_url else None
    )
    install_error_handlers(app)
    if settings.docs_enabled:
        install_docs(app)
    app.include_router(health.router)
    app.include_router(metrics_router)
    # Every API route can meet an unreachable database.
    routers = (ingest_router, similar_router, report_router, review_router, stats_router, taxonomy_router,
               audit_router, models_router)
    for router in routers:
        app.include_router(router, responses=error_responses(503), dependencies=[Depends(single_valued_query)])
    # The web pages for quality advisers (app/web): the same services behind a session cookie.
    app.state.web_assets = Assets()
    app.include_router(web_router)
    install_not_found_page(app)
    app.add_middleware(PageHeadersMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(NulInUrlMiddleware)
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(ResponseHeadersMiddleware)
    # Outermost: it sees every answer, including those the middleware above sends on its own.
    app.add_middleware(RequestObservationMiddleware, log_requests=settings.request_log,
                       record_metrics=settings.metrics_enabled)
    return app
