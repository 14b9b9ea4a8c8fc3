"""Serving over HTTP: uvicorn, with connections that cannot pile up and a log an overload cannot flood.

uvicorn's keep-alive timer starts only after a response: a connection that never sends a request, or
sends its head a byte at a time, was held for ever (21,000 of them exhausted the file descriptors).
Here a connection must deliver a whole request head within a deadline, and beyond a number of open
connections a new one is closed at once, so the process never runs out of descriptors. Lines that an
overload repeats (asyncio's "out of system resource" traceback, uvicorn's "Exceeded concurrency limit")
pass once per interval, with a count of the ones held back.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import shutil
import threading
import time
from functools import cache
from pathlib import Path
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from app.observability.logs import logging_config
from app.settings import Settings

logger = logging.getLogger("avvik.server")

FD_RESERVE = 100  # descriptors kept for the database pool, log files, the model and the listening sockets
FLOOD_INTERVAL_S = 10.0
# Messages an overload repeats for every connection or accept attempt (prefixes of the formatted text).
FLOOD_PREFIXES = ("socket.accept() out of system resource", "Exceeded concurrency limit",
                  "closed a new connection")


@cache
def connection_limit() -> tuple[float, int]:
    """(seconds to deliver a request head, open connections per process), from the settings and the
    process's descriptor limit."""
    settings = Settings()
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    cap = settings.max_connections
    if soft != resource.RLIM_INFINITY:
        cap = max(1, min(cap, soft - FD_RESERVE))
    return settings.http_header_timeout_seconds, cap


class BoundedH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, with a deadline for each request head and a cap on open connections."""

    _head_timer: asyncio.TimerHandle | None = None

    # uvicorn narrows asyncio's BaseTransport to Transport here, and silences the same error in its own class.
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Refuse a connection beyond the cap; otherwise wait for its first request head."""
        super().connection_made(transport)
        _, cap = connection_limit()
        if len(self.connections) > cap:
            logger.warning("closed a new connection: %d open, the limit is %d (AVVIK_MAX_CONNECTIONS)",
                           len(self.connections) - 1, cap)
            transport.abort()
            return
        self._await_head()

    def data_received(self, data: bytes) -> None:
        """Feed uvicorn; once a request head is complete, its deadline no longer applies."""
        before = self.cycle
        super().data_received(data)
        if self.cycle is not before:
            self._cancel_head_timer()

    def on_response_complete(self) -> None:
        """The next request head on this connection gets the same deadline."""
        super().on_response_complete()
        if not self.transport.is_closing():
            self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the head timer with the connection."""
        self._cancel_head_timer()
        super().connection_lost(exc)

    def _await_head(self) -> None:
        self._cancel_head_timer()
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a pipelined request already started: it is not waiting for a head
        timeout, _ = connection_limit()
        self._head_timer = self.loop.call_later(timeout, self._head_overdue, self.cycle)

    def _head_overdue(self, cycle_then: object) -> None:
        self._head_timer = None
        if self.cycle is cycle_then and not self.transport.is_closing():
            self.transport.close()

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None


class FloodFilter(logging.Filter):
    """Let a repeated overload message through once per interval, saying how many were held back."""

    def __init__(self, interval: float = FLOOD_INTERVAL_S) -> None:
        super().__init__()
        self.interval = interval
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        """True for ordinary records and for the first of a flood in each interval."""
        message = record.getMessage()
        prefix = next((p for p in FLOOD_PREFIXES if message.startswith(p)), None)
        if prefix is None:
            return True
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(prefix, float("-inf")) < self.interval:
                self._held[prefix] = self._held.get(prefix, 0) + 1
                return False
            self._last[prefix] = now
            held = self._held.pop(prefix, 0)
        if held:
            record.msg, record.args = f"{message} ({held} more like this in the last interval held back)", None
        return True


def log_config(settings: Settings) -> dict[str, Any]:
    """The service's logging configuration (app.observability.logs) with the flood filter on the loggers an
    overload floods."""
    config = logging_config(settings.log_format, settings.log_level)
    config.setdefault("filters", {})["flood"] = {"()": "app.server.FloodFilter"}
    for name in ("uvicorn.error", "avvik.server"):
        config["loggers"].setdefault(name, {"level": settings.log_level.upper(), "propagate": True})
        config["loggers"][name]["filters"] = ["flood"]
    config["loggers"]["asyncio"] = {"level": "WARNING", "propagate": True, "filters": ["flood"]}
    return config


def serve(settings: Settings, host: str, port: int, workers: int) -> None:
    """Run the app under uvicorn with this module's protocol, limits and logging."""
    import uvicorn

    if workers > 1 and settings.metrics_enabled:
        prepare_multiprocess_metrics()
    _, cap = connection_limit()
    uvicorn.run("app.main:create_app", factory=True, host=host, port=port, workers=workers,
                http="app.server:BoundedH11Protocol", log_config=log_config(settings),
                log_level=settings.log_level.lower(), access_log=False, server_header=False,
                timeout_keep_alive=settings.http_keep_alive_seconds, limit_concurrency=cap + 1,
                timeout_graceful_shutdown=settings.http_graceful_shutdown_seconds)


def prepare_multiprocess_metrics() -> None:
    """Workers count into files of a shared directory, so that /metrics in any of them sums them all.

    PROMETHEUS_MULTIPROC_DIR must be set before the workers import prometheus_client; an operator's own
    directory is kept, otherwise a fresh one under var/ (old files would add a dead process's counts)."""
    from app.observability.metrics import MULTIPROCESS_ENV

    if os.environ.get(MULTIPROCESS_ENV):
        return
    directory = Path("var") / "prometheus"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.environ[MULTIPROCESS_ENV] = str(directory.resolve())
