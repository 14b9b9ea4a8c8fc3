"""/docs works without internet: Swagger UI is served from the package; docs off hides the spec too."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings


def client(**overrides: object) -> TestClient:
    return TestClient(create_app(Settings(_env_file=None, gc_freeze=False, **overrides)))  # type: ignore[arg-type]


def test_docs_load_nothing_from_another_host() -> None:
    with client() as c:
        page = c.get("/docs")
        assert page.status_code == 200
        sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert sources and all(s.startswith("/") and not s.startswith("//") for s in sources), sources
        assert "http://" not in page.text and "https://" not in page.text
        assert '"validatorUrl": null' in page.text  # the validator badge would load an image from swagger.io
        for source in sources:
            asset = c.get(source)
            assert asset.status_code == 200 and len(asset.content) > 0, source
        assert c.get("/static/swagger-ui/swagger-ui-bundle.js").headers["content-type"].startswith("text/javascript")
        assert c.get("/openapi.json").json()["info"]["title"] == "Avvik API"


def test_docs_off_hides_the_spec_and_the_assets_too() -> None:
    with client(docs_enabled=False) as c:
        for path in ("/docs", "/openapi.json", "/static/swagger-ui/swagger-ui-bundle.js", "/redoc"):
            assert c.get(path).status_code == 404, path
