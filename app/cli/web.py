"""`avvik web signin-link`: one-time sign-in links for local use."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.base import CliError, session_scope
from app.settings import Settings

web_cli = typer.Typer(help="The web pages: one-time sign-in links for local use.", no_args_is_help=True)


@web_cli.command("signin-link")
def web_signin_link(
    key_name: Annotated[str, typer.Option(help="An adviser or admin API key (`avvik apikey list`)")],
    base_url: Annotated[str | None, typer.Option(help="Default: http://AVVIK_HOST:AVVIK_PORT")] = None,
) -> None:
    """Print a sign-in link for the pages, valid once for ten minutes, with that key's role and departments."""
    from app.web import session as web_session

    settings = Settings()
    if not web_session.key_signin_enabled(settings):
        raise CliError("Sign-in links are off (Entra ID is configured); set AVVIK_WEB_KEY_SIGNIN=true to allow "
                       "them.", prefix="")
    with session_scope() as session:
        try:
            token = web_session.create_link(session, key_name)
        except LookupError as exc:
            raise CliError(str(exc), prefix="") from exc
    typer.echo(f"{(base_url or f'http://{settings.host}:{settings.port}').rstrip('/')}/logg-inn/lenke/{token}")
