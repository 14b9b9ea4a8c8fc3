"""Log lines as JSON objects (or plain text in a terminal), and one way to log an unexpected error.

Free text in reports is confidential, and an exception's message may quote it (a database error quotes the
row, a parser quotes its input). So no formatter here ever writes an exception's message: a traceback is
written as the exception's type and its stack only, whoever logged it (our code, uvicorn, a library).
"""

from __future__ import annotations

import logging
import sys
import traceback
from types import TracebackType
from typing import Any, Literal

from pythonjsonlogger.json import JsonFormatter

LogFormat = Literal["auto", "json", "text"]
ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]


def exception_without_message(exc_info: ExcInfo) -> str:
    """A traceback as its exception's type and stack, never its message (it may quote free text)."""
    kind, _, stack = exc_info
    name = kind.__name__ if kind is not None else "Exception"
    return "Traceback (most recent call last):\n" + "".join(traceback.format_tb(stack)) + name


class JsonLineFormatter(JsonFormatter):
    """One JSON object per line: time, level, logger, message and any `extra` fields."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("rename_fields", {"asctime": "time", "levelname": "level", "name": "logger"})
        kwargs.setdefault("timestamp", False)
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s", *args, **kwargs)

    def formatException(self, ei: Any) -> str:
        return exception_without_message(ei)


class TextFormatter(logging.Formatter):
    """A line for a person at a terminal: time, level, logger, message, then `extra` fields as key=value."""

    _STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = " ".join(f"{k}={v}" for k, v in vars(record).items() if k not in self._STANDARD)
        return f"{line} {extra}" if extra else line

    def formatException(self, ei: Any) -> str:
        return exception_without_message(ei)


def chosen_format(log_format: LogFormat) -> Literal["json", "text"]:
    """`auto`: plain text when a person watches a terminal, JSON when a log collector reads the stream."""
    if log_format != "auto":
        return log_format
    return "text" if sys.stderr.isatty() else "json"


def logging_config(log_format: LogFormat, level: str) -> dict[str, Any]:
    """A `logging.config.dictConfig` for the service and the uvicorn it runs in: every line in one format."""
    formatter = "app.observability.logs.JsonLineFormatter" if chosen_format(log_format) == "json" \
        else "app.observability.logs.TextFormatter"
    handler = {"class": "logging.StreamHandler", "formatter": "default", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": {"()": formatter}},
        "handlers": {"default": handler},
        "root": {"handlers": ["default"], "level": level.upper()},
        "loggers": {
            # uvicorn's own loggers bring handlers of their own; route them through ours.
            "uvicorn": {"handlers": [], "level": level.upper(), "propagate": True},
            "uvicorn.error": {"handlers": [], "level": level.upper(), "propagate": True},
            # Its access log writes the raw path and query string: the service's own request log replaces it.
            "uvicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
            # httpx logs every URL it requests at INFO (the service fetches only the key set, but a URL is a URL).
            "httpx": {"level": "WARNING"},
        },
    }


def log_error(logger: logging.Logger, message: str, exc: BaseException, *args: object,
              **fields: object) -> None:
    """Log an unexpected error by its type and stack only, with a message of our own and plain fields."""
    logger.error(message + " (%s)\n%s", *args, type(exc).__name__, "".join(traceback.format_tb(exc.__traceback__)),
                 extra={"error_type": type(exc).__name__, **fields})
