"""Traces, off by default. When on, every span leaves the process scrubbed: only attributes on an allowlist
of plain facts (method, route template, status, server, error type) survive; the raw path (it can hold a
case number or an identity number), the query string (free-text search), exception messages and status
descriptions never do.

FastAPI instruments itself: as soon as any global tracer provider exists its spans carry `url.path` and
`url.query` verbatim. So the app always hands FastAPI an explicit telemetry configuration: tracing only
when the setting asks for it, and then only into a provider whose exporter is wrapped in the scrubber;
FastAPI's own logs (which include exception messages) and metrics (Prometheus serves those) always off.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from fastapi.telemetry import TelemetryConfig
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Link, Status

ALLOWED_ATTRIBUTES = frozenset({
    "http.request.method", "http.route", "http.response.status_code", "url.scheme", "server.address",
    "server.port", "network.protocol.name", "network.protocol.version", "error.type", "code.function.name",
    "fastapi.validation.error_count", "exception.type",
})
# A span name is kept only when it is a method, a method and a route template, or one of FastAPI's own
# operation names; anything else (a raw path) becomes the method alone.
_SAFE_NAME = re.compile(r"^(?:[A-Z]{3,7}|fastapi\.[a-z_]+)$")


def _attributes(values: Any) -> dict[str, Any]:
    return {k: v for k, v in (values or {}).items() if k in ALLOWED_ATTRIBUTES}


def _name(span: ReadableSpan, attributes: dict[str, Any]) -> str:
    route, method = attributes.get("http.route"), attributes.get("http.request.method")
    if _SAFE_NAME.match(span.name) or (route and method and span.name == f"{method} {route}"):
        return span.name
    return str(method or "span")


def scrub(span: ReadableSpan) -> ReadableSpan:
    """The span as it may leave the process: allowlisted attributes, no messages, no raw paths."""
    attributes = _attributes(span.attributes)
    return ReadableSpan(
        name=_name(span, attributes), context=span.context, parent=span.parent, resource=span.resource,
        attributes=attributes,
        events=[Event(e.name, _attributes(e.attributes), e.timestamp) for e in span.events],
        links=[Link(link.context, _attributes(link.attributes)) for link in span.links],
        kind=span.kind, status=Status(span.status.status_code), start_time=span.start_time,
        end_time=span.end_time, instrumentation_scope=span.instrumentation_scope,
    )


class ScrubbingExporter(SpanExporter):
    """Wraps the real exporter: it only ever sees scrubbed spans."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Export the scrubbed copies of the spans."""
        return self.inner.export([scrub(span) for span in spans])

    def shutdown(self) -> None:
        """Shut the real exporter down."""
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Flush the real exporter."""
        return self.inner.force_flush(timeout_millis)


def otlp_exporter() -> SpanExporter:
    """The OTLP/HTTP exporter, configured by the standard OTEL_EXPORTER_OTLP_* environment variables."""
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as exc:  # an optional extra: say how to get it instead of failing obscurely
        raise RuntimeError("AVVIK_TRACING_ENABLED=true needs the OTLP exporter: pip install 'avvik[otel]'") from exc
    exporter: SpanExporter = OTLPSpanExporter()  # an optional extra, so mypy may not see its types
    return exporter


def telemetry_config(enabled: bool, service_name: str, exporter: SpanExporter | None = None) -> TelemetryConfig:
    """FastAPI's `telemetry=` argument: our provider with the scrubbing exporter, or tracing off."""
    config: TelemetryConfig = {"metrics": False, "logs": False, "auto_configure": False, "tracing": enabled}
    if enabled:
        provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        provider.add_span_processor(BatchSpanProcessor(ScrubbingExporter(exporter or otlp_exporter())))
        config["tracer_provider"] = provider
    return config
