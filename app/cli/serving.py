"""`avvik serve`."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.base import ensure_model, session_scope
from app.settings import Settings


def serve(
    host: Annotated[str | None, typer.Option(help="Default: AVVIK_HOST")] = None,
    port: Annotated[int | None, typer.Option(help="Default: AVVIK_PORT")] = None,
    workers: Annotated[int, typer.Option(min=1)] = 1,
) -> None:
    """Serve the API with uvicorn (connection limits and timeouts: app/server.py)."""
    from app import server
    from app.auth.keys import ensure_bootstrap_key

    settings = Settings()
    ensure_model(settings, by="serve")
    with session_scope() as session:
        generated = ensure_bootstrap_key(session, settings.bootstrap_api_key)
    if generated:
        typer.echo("No API key existed, so an admin key was created. It is shown this once; keep it:\n\n"
                   f"    {generated}\n\n"
                   f"Try: curl -H 'Authorization: Bearer {generated}' "
                   f"http://{host or settings.host}:{port or settings.port}/api/v1/taxonomy\n"
                   "Create keys for clients with `avvik apikey create`, then revoke this one "
                   "(`avvik apikey revoke bootstrap-admin`).\n")
    server.serve(settings, host or settings.host, port or settings.port, workers)
