"""Domain errors and the one JSON error shape every failure is answered with."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.observability.logs import log_error
from app.privacy.redaction import redact

logger = logging.getLogger("avvik")

# The detail of FastAPI's HTTPException for a request body it could not decode.
_BODY_UNREADABLE = "There was an error parsing the body"


class FieldError(BaseModel):
    """One problem with one field of the request."""

    field: str
    reason: str


class ErrorBody(BaseModel):
    """The body of every error answer."""

    error: str
    message: str
    fields: list[FieldError] = []


class DomainError(Exception):
    """A business-rule failure that maps to one HTTP status."""

    status_code = 400
    error = "bad_request"

    def __init__(self, message: str, fields: Sequence[FieldError] = (), headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = list(fields)
        self.headers = headers


class NotFound(DomainError):
    status_code = 404
    error = "not_found"


class Conflict(DomainError):
    status_code = 409
    error = "conflict"


class PreconditionFailed(DomainError):
    """A conditional request (If-Match) whose condition no longer holds: someone changed it in the meantime."""

    status_code = 412
    error = "precondition_failed"


class InvalidInput(DomainError):
    status_code = 422
    error = "validation_error"


class PayloadTooLarge(DomainError):
    status_code = 413
    error = "payload_too_large"


class Unauthenticated(DomainError):
    """No or bad credentials (RFC 6750: 401 with a WWW-Authenticate challenge)."""

    status_code = 401
    error = "unauthenticated"


class Forbidden(DomainError):
    """Authenticated, but the role does not allow this (RFC 6750: insufficient_scope)."""

    status_code = 403
    error = "forbidden"


class TooManyRequests(DomainError):
    status_code = 429
    error = "too_many_requests"


class Unavailable(DomainError):
    status_code = 503
    error = "unavailable"


ECHO_LIMIT = 100  # characters of a request's value an error answer quotes


def echo(value: object, limit: int = ECHO_LIMIT) -> str:
    """A value from the request, fit to quote in an error answer: identity numbers, phone numbers and
    e-mail addresses removed (an answer, a log line or a proxy may keep it), characters that UTF-8 cannot
    carry (a lone surrogate) replaced, and cut at `limit` characters. Every echo of input goes through here."""
    text = value if isinstance(value, str) else str(value)
    text = redact(text.encode("utf-8", "replace").decode("utf-8")).text
    return text if len(text) <= limit else text[:limit] + "…"


def safe_body(body: ErrorBody) -> ErrorBody:
    """The body with its message, field names and reasons passed through `echo`, so that a message built
    without it still cannot carry an identifier (or an unencodable character) back."""
    return ErrorBody(error=body.error, message=echo(body.message, limit=2000),
                     fields=[FieldError(field=echo(f.field), reason=echo(f.reason, limit=2000)) for f in body.fields])


def error_response(status: int, body: ErrorBody, headers: dict[str, str] | None = None) -> JSONResponse:
    """Render an error body as JSON (through `safe_body`)."""
    return JSONResponse(safe_body(body).model_dump(), status_code=status, headers=headers)


def field_name(loc: Sequence[Any]) -> str:
    """'body.items.0.title' -> 'items[0].title': the name a client recognises from its own payload."""
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    name = ""
    for part in parts:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or ".".join(str(p) for p in loc)


def validation_fields(errors: Sequence[Mapping[str, Any]]) -> list[FieldError]:
    """Pydantic errors as FieldErrors, without echoing the input (it may be confidential free text)."""
    return [FieldError(field=field_name(e.get("loc", ())), reason=e.get("msg", "invalid")) for e in errors]


def install_error_handlers(app: FastAPI) -> None:
    """Answer every failure with ErrorBody; never a stack trace, never a bare 500 for bad input."""

    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        body = ErrorBody(error=exc.error, message=exc.message, fields=exc.fields)
        return error_response(exc.status_code, body, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        fields = validation_fields(exc.errors())
        message = "; ".join(f"{f.field}: {f.reason}" for f in fields[:5])
        return error_response(422, ErrorBody(error="validation_error", message=message, fields=fields))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == _BODY_UNREADABLE:
            # FastAPI answers 422 for malformed JSON but 400 for a body it cannot even decode (not UTF-8):
            # both are the same mistake to the caller, so both get the validation answer naming the body.
            fields = [FieldError(field="body", reason="not valid JSON in UTF-8")]
            return error_response(422, ErrorBody(error="validation_error", message="body: not valid JSON in UTF-8",
                                                 fields=fields))
        return error_response(
            exc.status_code,
            ErrorBody(error=_http_error_name(exc.status_code), message=str(exc.detail)),
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(OperationalError)
    async def _database_unavailable(request: Request, exc: OperationalError) -> JSONResponse:
        # SQLite raises SQL errors (no such column, syntax) as OperationalError too; answered 503 with
        # Retry-After, a bug would be retried forever and never logged. SQLITE_ERROR is that generic code;
        # busy, locked, unopenable or full databases have their own.
        if getattr(exc.orig, "sqlite_errorname", None) == "SQLITE_ERROR":
            return _internal_error(request, exc)
        return _unavailable(exc)

    @app.exception_handler(PoolTimeout)
    async def _pool_exhausted(_: Request, exc: PoolTimeout) -> JSONResponse:
        # Every pooled connection is busy or being (re)connected to a database that does not answer.
        return error_response(503, ErrorBody(error="database_unavailable",
                                             message="no database connection became free in time; retry later"),
                              headers={"Retry-After": "5"})

    @app.exception_handler(DBAPIError)
    async def _database_error(request: Request, exc: DBAPIError) -> JSONResponse:
        if exc.connection_invalidated or _sqlstate(exc) in _DATABASE_REASONS:
            return _unavailable(exc)
        return _internal_error(request, exc)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return _internal_error(request, exc)


def log_unexpected(request: Request, exc: BaseException) -> None:
    """Log where an unexpected error happened: type and stack, never its message (it may quote free text)."""
    log_error(logger, "unexpected error on %s %s", exc, request.method,
              getattr(request.scope.get("route"), "path", "?"), request_id=getattr(request.state, "request_id", None))


def _internal_error(request: Request, exc: BaseException) -> JSONResponse:
    """A bug: logged where it happened, answered 500 without its message."""
    log_unexpected(request, exc)
    return error_response(500, ErrorBody(error="internal_error", message="internal error"))


# What a 503 says, by the error's SQLSTATE: only a database that cannot be reached is called that.
_DATABASE_REASONS = {
    "40P01": ("database_busy", "concurrent writes to the same rows deadlocked and retrying did not resolve it; "
                               "retry later"),
    "40001": ("database_busy", "concurrent writes to the same rows conflicted and retrying did not resolve it; "
                               "retry later"),
    "55P03": ("database_busy", "waited too long for rows another transaction is writing (lock timeout); "
                               "retry later"),
    "57014": ("database_timeout", "a database statement ran past the statement timeout; retry later"),
}
_SQLITE_BUSY = ("database_busy", "the database is busy with another writer; retry later")
_UNREACHABLE = ("database_unavailable", "the database cannot be reached; retry later")


def _sqlstate(exc: DBAPIError | None) -> str | None:
    return getattr(getattr(exc, "orig", None), "sqlstate", None)


def _unavailable(exc: DBAPIError | None = None) -> JSONResponse:
    error, message = _DATABASE_REASONS.get(_sqlstate(exc) or "", _UNREACHABLE)
    if getattr(getattr(exc, "orig", None), "sqlite_errorname", None) in ("SQLITE_BUSY", "SQLITE_LOCKED"):
        error, message = _SQLITE_BUSY
    return error_response(503, ErrorBody(error=error, message=message), headers={"Retry-After": "5"})


def _http_error_name(status: int) -> str:
    return {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(status, "http_error")


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI documentation of the error answers a route can give."""
    descriptions = {
        401: "Missing or invalid credentials",
        403: "The role does not allow this",
        404: "Not found",
        409: "Conflict with the stored state",
        412: "The If-Match version is no longer current: someone changed it in the meantime",
        413: "Request body too large",
        422: "Invalid input: the fields and the reasons",
        429: "Too many requests; retry after the Retry-After header",
        503: "Database unavailable; retry after the Retry-After header",
    }
    return {s: {"model": ErrorBody, "description": descriptions[s]} for s in statuses}
