"""Swagger UI at /docs from the package's own copy, so the docs work where a network blocks CDNs."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(__file__).parent / "static" / "swagger-ui"
ASSETS_PATH = "/static/swagger-ui"


def install_docs(app: FastAPI) -> None:
    """Serve /docs with the vendored Swagger UI (see app/static/swagger-ui/VERSIONS.md)."""
    app.mount(ASSETS_PATH, StaticFiles(directory=ASSETS), name="swagger-ui")

    def docs(request: Request) -> HTMLResponse:
        """The interactive API documentation (a plain route, like FastAPI's own /docs: public, not in the spec)."""
        assert app.openapi_url is not None
        return get_swagger_ui_html(
            openapi_url=app.openapi_url, title=f"{app.title} – docs",
            swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js", swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_PATH}/favicon-32x32.png",
            # The default validator badge fetches an image from swagger.io.
            swagger_ui_parameters={"validatorUrl": None},
        )

    app.add_route("/docs", docs, include_in_schema=False)
