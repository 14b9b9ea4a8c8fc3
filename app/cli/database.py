"""`avvik migrate`, `avvik revision` and `avvik db grant`: the schema and the runtime role."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.base import CliError, safe_url
from app.settings import Settings

db_cli = typer.Typer(help="Database roles (PostgreSQL).", no_args_is_help=True)


def migrate() -> None:
    """Apply every migration, as the schema's owner (AVVIK_MIGRATION_DATABASE_URL, else AVVIK_DATABASE_URL)."""
    from app.migrate import upgrade

    settings = Settings()
    upgrade(settings.owner_database_url)
    typer.echo(f"migrated {safe_url(settings.owner_database_url)}")


@db_cli.command("grant")
def db_grant(role: Annotated[str, typer.Option(help="The role `avvik serve` connects as")]) -> None:
    """Give the runtime role what the service needs and no more (run as the owner, after `avvik migrate`)."""
    from app.migrate import GrantError, grant_runtime_role

    settings = Settings()
    try:
        grant_runtime_role(settings.owner_database_url, role)
    except GrantError as exc:
        raise CliError(str(exc), prefix="error: ") from exc
    typer.echo(f"granted {role} the runtime privileges on {safe_url(settings.owner_database_url)}")


def revision(message: str) -> None:
    """Write a new migration from the difference between the models and the (migrated) database."""
    from alembic import command

    from app.migrate import alembic_config

    command.revision(alembic_config(Settings().owner_database_url), message=message, autogenerate=True)
