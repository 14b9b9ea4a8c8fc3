"""A rule every route's query string follows: a parameter the contract declares as one value comes once."""

from __future__ import annotations

from collections import Counter

from fastapi import FastAPI, Request
from fastapi.routing import APIRoute

from app.errors import FieldError, InvalidInput


def single_valued_query(request: Request) -> None:
    """Refuse `?q=a&q=b` for a one-value parameter with 422 naming it; FastAPI would silently keep the last
    value, so a caller that meant both (or built its URL wrong) would get an answer to another question.
    Repeatable filters (arrays in the contract, such as `status` or `service`) are not affected."""
    repeated = [name for name, n in Counter(k for k, _ in request.query_params.multi_items()).items() if n > 1]
    if not repeated:
        return
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    single = _single_valued(request.app, route.path, request.method)
    fields = [FieldError(field=name, reason="give this parameter once; it takes one value")
              for name in repeated if name in single]
    if fields:
        raise InvalidInput("a one-value query parameter was given more than once", fields)


def _single_valued(app: FastAPI, path: str, method: str) -> frozenset[str]:
    # Read from the app's own OpenAPI document (built once and cached by FastAPI), the same contract
    # clients and the fuzz tests see.
    cache: dict[tuple[str, str], frozenset[str]] = app.state.single_valued_query
    key = (method, path)
    if key not in cache:
        operation = app.openapi().get("paths", {}).get(path, {}).get(method.lower(), {})
        cache[key] = frozenset(
            p["name"] for p in operation.get("parameters", [])
            if p.get("in") == "query" and not _is_array(p.get("schema", {}))
        )
    return cache[key]


def _is_array(schema: dict[str, object]) -> bool:
    if schema.get("type") == "array":
        return True
    variants = schema.get("anyOf") or schema.get("oneOf") or []
    return isinstance(variants, list) and any(isinstance(v, dict) and v.get("type") == "array" for v in variants)
