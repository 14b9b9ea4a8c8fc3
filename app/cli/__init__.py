"""The `avvik` command: serve, migrate, and manage the taxonomy, keys and models.

Errors a user can fix end as one line and an exit code, never a traceback: bad values exit 2 naming the
valid values; refusals and an unmigrated or unreachable database exit 1 (app.cli.base).
"""

from __future__ import annotations

from app.cli.base import cli
from app.cli.database import db_cli, migrate, revision
from app.cli.importing import import_command
from app.cli.keys import apikey_cli
from app.cli.models import metrics_table, model_cli
from app.cli.scoring import classify, rescore
from app.cli.serving import serve
from app.cli.taxonomy import taxonomy_cli
from app.cli.web import web_cli

__all__ = ["cli", "main", "metrics_table"]

# Registered here, in the order `avvik --help` lists them: the root commands, then the groups.
cli.command()(migrate)
cli.command()(revision)
cli.command()(serve)
cli.command("import")(import_command)
cli.command()(classify)
cli.command()(rescore)
cli.add_typer(taxonomy_cli, name="taxonomy")
cli.add_typer(apikey_cli, name="apikey")
cli.add_typer(model_cli, name="model")
cli.add_typer(db_cli, name="db")
cli.add_typer(web_cli, name="web")


def main() -> None:
    """Entry point of the console script."""
    cli()
