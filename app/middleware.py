"""ASGI middleware: the request body limit, NUL characters in the URL, request ids, and the security and
no-store headers."""

from __future__ import annotations

import re
import uuid
from urllib.parse import parse_qsl

from fastapi import HTTPException
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import ErrorBody, FieldError, safe_body
from app.fields import NUL, NUL_REASON


class BodyLimitMiddleware:
    """Refuse bodies over a limit with 413, by Content-Length up front or by counting a streamed body."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # FastAPI re-raises HTTPException from body parsing; the error handler shapes it.
                    raise HTTPException(413, f"request body over {self.max_bytes} bytes")
            return message

        await self.app(scope, counting_receive, send)

    async def _refuse(self, send: Send) -> None:
        body = ErrorBody(error="payload_too_large", message=f"request body over {self.max_bytes} bytes")
        await send_error(send, 413, body, close=True)


async def send_error(send: Send, status: int, body: ErrorBody, close: bool = False) -> None:
    """An error answer sent by a middleware, before the app (and its exception handlers) is reached."""
    payload = safe_body(body).model_dump_json().encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status,
                "headers": headers + ([(b"connection", b"close")] if close else [])})
    await send({"type": "http.response.body", "body": payload})


SECURITY_HEADERS = {
    # A browser must not guess a type other than the one declared (a CSV or JSON answer read as HTML).
    "X-Content-Type-Options": "nosniff",
    # Links followed from /docs or an export must not tell other sites which report URL they came from.
    "Referrer-Policy": "no-referrer",
}


class ResponseHeadersMiddleware:
    """The security headers on every answer (API, errors, also those sent by other middleware, health checks
    and the documentation; added last, so it wraps everything), and, since API answers may hold confidential
    text, `Cache-Control: no-store` on them, so no cache or browser keeps them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api = scope["path"].startswith("/api/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
                if api:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_DIGIT_RUN = re.compile(r"\d{6}")


class RequestIdMiddleware:
    """Give every request an id (the caller's X-Request-ID when it is sane) for logs and the audit trail."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        # A caller's id goes into logs and audit rows: one with a run of digits (an identity or phone number
        # sent by mistake) is replaced like a malformed one.
        request_id = incoming if _REQUEST_ID.match(incoming) and not _DIGIT_RUN.search(incoming) \
            else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        await self.app(scope, receive, send_with_id)


class NulInUrlMiddleware:
    """Refuse a NUL character in the path or a query parameter with 422 naming it: PostgreSQL cannot store
    or compare text holding one, so it would otherwise reach the database as an error (a 500). JSON bodies
    are checked by their models (`app.fields.NoNul`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        fields: list[FieldError] = []
        if NUL in scope["path"]:
            fields.append(FieldError(field="path", reason=NUL_REASON))
        query: bytes = scope.get("query_string", b"")
        if b"%00" in query or b"\x00" in query:
            names = dict.fromkeys(name for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True)
                                  if NUL in name or NUL in value)
            fields += [FieldError(field=name.replace(NUL, "\\u0000"), reason=NUL_REASON) for name in names]
        if not fields:
            await self.app(scope, receive, send)
            return
        await send_error(send, 422, ErrorBody(
            error="validation_error", message="; ".join(f"{f.field}: {f.reason}" for f in fields), fields=fields))
