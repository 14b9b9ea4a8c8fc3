"""Vendored static files served under content-hashed names, so browsers may keep them for a year."""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

STATIC_DIR = Path(__file__).parent / "static"
SERVED_SUFFIXES = {".css", ".js", ".svg", ".woff2"}
IMMUTABLE = "public, max-age=31536000, immutable"


@dataclass(frozen=True)
class Asset:
    """One static file: its hashed URL name, bytes and media type."""

    hashed_name: str
    body: bytes
    media_type: str


class Assets:
    """The static files of app/web/static, read once at start-up."""

    def __init__(self, directory: Path = STATIC_DIR) -> None:
        self.by_name: dict[str, Asset] = {}
        self.by_hashed: dict[str, Asset] = {}
        for path in sorted(directory.iterdir()):
            if path.suffix not in SERVED_SUFFIXES:
                continue
            body = path.read_bytes()
            digest = hashlib.sha256(body).hexdigest()[:12]
            media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            if media_type.startswith("text/") or media_type.endswith("javascript"):
                media_type += "; charset=utf-8"
            asset = Asset(f"{path.stem}.{digest}{path.suffix}", body, media_type)
            self.by_name[path.name] = asset
            self.by_hashed[asset.hashed_name] = asset

    def url(self, name: str) -> str:
        """The URL of a static file by its plain name (KeyError for a file that is not there)."""
        return f"/static/{self.by_name[name].hashed_name}"


async def serve_asset(request: Request) -> Response:
    """A static file by its hashed name; 404 for any other name (an old hash included)."""
    assets: Assets = request.app.state.web_assets
    asset = assets.by_hashed.get(request.path_params["name"])
    if asset is None:
        return Response("Ikke funnet", status_code=404, media_type="text/plain; charset=utf-8")
    return Response(asset.body, media_type=asset.media_type, headers={"Cache-Control": IMMUTABLE})
