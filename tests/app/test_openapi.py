"""The committed API contract is what the app serves, and every route documents itself."""

from __future__ import annotations

import json

from app.main import create_app
from app.openapi import SPEC_PATH, render_openapi
from app.settings import Settings


def test_committed_spec_is_current() -> None:
    assert SPEC_PATH.read_text(encoding="utf-8") == render_openapi(create_app(Settings(_env_file=None))), \
        "API changed: run `make openapi` and commit openapi/openapi.json"


def test_every_operation_has_a_summary_and_typed_answers() -> None:
    spec = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert operation.get("summary"), f"{method} {path} has no summary"
            ok = [s for s in operation["responses"] if s.startswith("2")]
            assert ok, f"{method} {path} documents no success answer"
            for status in ok:
                content = operation["responses"][status].get("content", {})
                if content:
                    assert content["application/json"]["schema"], f"{method} {path} {status} untyped"
            if path.startswith("/api/"):
                errors = {s for s in operation["responses"] if s[0] in "45"}
                assert errors, f"{method} {path} documents no error answer"
