"""Render the committed API contract: `python -m app.openapi` writes openapi/openapi.json."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi import FastAPI

SPEC_PATH = Path(__file__).resolve().parent.parent / "openapi" / "openapi.json"


def render_openapi(app: FastAPI) -> str:
    """The OpenAPI document as stable, diff-friendly JSON."""
    return json.dumps(app.openapi(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def main() -> None:
    """Write the contract of the app as configured by default."""
    from app.main import create_app
    from app.settings import Settings

    SPEC_PATH.parent.mkdir(parents=True, exist_ok=True)
    SPEC_PATH.write_text(render_openapi(create_app(Settings(docs_enabled=True))), encoding="utf-8")
    print(f"wrote {SPEC_PATH}")


if __name__ == "__main__":
    main()
