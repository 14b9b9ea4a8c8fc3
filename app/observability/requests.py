"""One log line and the request metrics for every HTTP request, from the outermost middleware.

The line names the route template (`/api/v1/reports/{report_id}`), never the raw path or the query string,
so a case number, an identity number or a free-text search cannot reach the log.
"""

from __future__ import annotations

import logging
from time import perf_counter

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.observability import metrics

logger = logging.getLogger("avvik.request")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestObservationMiddleware:
    """Log each request as one line and count it, after its last byte is sent."""

    def __init__(self, app: ASGIApp, log_requests: bool = True, record_metrics: bool = True) -> None:
        self.app = app
        self.log_requests = log_requests
        self.record_metrics = record_metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not (self.log_requests or self.record_metrics):
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        status, sent = 500, 0

        async def observe(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            self._observe(scope, status, sent, perf_counter() - started)

    def _observe(self, scope: Scope, status: int, sent: int, seconds: float) -> None:
        route = getattr(scope.get("route"), "path", None) or "unmatched"
        method = scope["method"] if scope["method"] in _METHODS else "OTHER"
        if self.record_metrics:
            metrics.REQUESTS.labels(route, method, str(status)).inc()
            metrics.REQUEST_SECONDS.labels(route, method).observe(seconds)
            metrics.apply_deferred(scope, succeeded=status < 400)
        if self.log_requests:
            state = scope.get("state", {})
            principal = state.get("principal")
            logger.info("request", extra={
                "request_id": state.get("request_id"), "method": method, "route": route, "status": status,
                "duration_ms": round(seconds * 1000, 2), "bytes": sent,
                "actor": principal.actor if principal is not None else None,
                "roles": sorted(r.value for r in principal.roles) if principal is not None else None,
            })
