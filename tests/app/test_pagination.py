"""Cursors are signed and every field is checked: a tampered or forged cursor is a 422 naming `cursor`."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.auth.principal import Role
from app.pagination import _sign
from tests.conftest import bearer
from tests.helpers import report

REPORTS = "/api/v1/reports"
QUEUE = "/api/v1/review-queue"
# What an outside probe sent (as base64 of JSON, the unsigned form cursors had): each was a 500 or a reset.
HOSTILE = [
    (REPORTS, '{"o":"reported_at:desc","v":"2026-06-24T09:00:00+00:00","i":2147483648}'),
    (REPORTS, '{"o":"reported_at:desc","v":"2026-06-24T09:00:00+00:00","i":1000000000000000000000000000000}'),
    (REPORTS, '{"o":"reported_at:desc","v":"2026-06-24T09:00:00+00:00","i":-9223372036854775808}'),
    (REPORTS, '{"o":"reported_at:desc","v":"0001-01-01T00:00:00+14:00","i":2}'),
    (REPORTS, '{"o":"reported_at:desc","v":"9999-12-31T23:59:59-14:00","i":2}'),
    (REPORTS, '{"o":"reported_at:desc","v":1e308,"i":2}'),
    (REPORTS, '{"o":"reported_at:desc","v":"2026-06-24T09:00:00","i":2}'),
    (REPORTS, '{"o":"reported_at:desc","v":"2026-06-24T09:00:00+00:00","i":true}'),
    (REPORTS, '{"o":"reported_at:desc","v":"2026-06-24T09:00:00+00:00","i":2,"x":1}'),
    (REPORTS, '["reported_at:desc","2026-06-24T09:00:00+00:00",2]'),
    (QUEUE, '{"o":"queue:score","v":NaN,"i":2}'),
    (QUEUE, '{"o":"queue:score","v":Infinity,"i":2}'),
    (QUEUE, '{"o":"queue:score","v":1e308,"i":2}'),
    (QUEUE, '{"o":"queue:score","v":"2026-06-24T09:00:00+00:00","i":2}'),
    (QUEUE, '{"o":"queue:score","v":0.5,"i":0}'),
]


def b64(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def assert_bad_cursor(answer) -> None:  # type: ignore[no-untyped-def]
    assert answer.status_code == 422, answer.text
    assert [f["field"] for f in answer.json()["fields"]] == ["cursor"]


@pytest.mark.parametrize(("path", "raw"), HOSTILE)
def test_a_tampered_cursor_is_422_naming_it(client: TestClient, path: str, raw: str) -> None:
    assert_bad_cursor(client.get(path, params={"cursor": b64(raw)}))
    assert_bad_cursor(client.get(path, params={"cursor": b64(raw) + ".AAAAAAAAAAAAAAAAAAAAAA"}))


@pytest.mark.parametrize(("path", "raw"), HOSTILE)
def test_a_hostile_cursor_signed_with_a_leaked_key_is_still_422(make_app: Callable[..., FastAPI],
                                                                 api_keys: dict[Role, str], path: str,
                                                                 raw: str) -> None:
    app = make_app()
    body = b64(raw)
    with TestClient(app, raise_server_exceptions=False, headers=bearer(api_keys[Role.ADMIN])) as client:
        assert_bad_cursor(client.get(path, params={"cursor": f"{body}.{_sign(app.state.cursor_key, body)}"}))


def test_cursors_pass_between_replicas_and_only_there(make_app: Callable[..., FastAPI],
                                                      api_keys: dict[Role, str]) -> None:
    headers = bearer(api_keys[Role.ADMIN])
    one, same = make_app(), make_app()
    other = make_app(cursor_secret="another installation's secret, 32+ chars")
    with TestClient(one, headers=headers) as first:
        for n in range(3):
            first.post(REPORTS, json=report(f"CURSOR-{n}", source_system="cursortest"))
        page = first.get(REPORTS, params={"limit": 1}).json()
        cursor = page["next_cursor"]
        assert cursor and json.loads(base64.urlsafe_b64decode(cursor.split(".")[0] + "==")).keys() == {"o", "v", "i"}
    with TestClient(same, headers=headers) as replica:
        following = replica.get(REPORTS, params={"limit": 1, "cursor": cursor})
        assert following.status_code == 200 and following.json()["items"][0]["id"] != page["items"][0]["id"]
    with TestClient(other, raise_server_exceptions=False, headers=headers) as elsewhere:
        assert_bad_cursor(elsewhere.get(REPORTS, params={"limit": 1, "cursor": cursor}))
    # Changed by one character: refused.
    flipped = cursor[:-1] + ("A" if cursor[-1] != "A" else "B")
    with TestClient(one, raise_server_exceptions=False, headers=headers) as first:
        assert_bad_cursor(first.get(REPORTS, params={"limit": 1, "cursor": flipped}))
