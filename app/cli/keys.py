"""`avvik apikey`: create, revoke and list keys of machine clients."""

from __future__ import annotations

from typing import Annotated

import typer

from app.auth.principal import Role
from app.cli.base import session_scope

apikey_cli = typer.Typer(help="Create, list and revoke API keys for machine clients.", no_args_is_help=True)


@apikey_cli.command("create")
def apikey_create(
    name: Annotated[str, typer.Option(help="Who uses the key, e.g. bkkvalitet-integration")],
    role: Annotated[Role, typer.Option(case_sensitive=False)],
    department: Annotated[list[str] | None, typer.Option(help="Limit an adviser to departments (repeat)")] = None,
) -> None:
    """Create a key; it is printed once and only its hash is stored."""
    import getpass

    from app.audit.service import record_cli
    from app.auth.keys import create_key

    with session_scope() as session:
        row, plaintext = create_key(session, name, role, department or None)
        record_cli(session, getpass.getuser(), "apikey.create", f"{row.name}:{row.role}")
    typer.echo(plaintext)
    typer.echo(f"created key '{row.name}' ({row.role}); it is not shown again", err=True)


@apikey_cli.command("revoke")
def apikey_revoke(name: str) -> None:
    """Revoke a key by name; it stops working at once."""
    import getpass

    from app.audit.service import record_cli
    from app.auth.keys import revoke_key

    with session_scope() as session:
        revoke_key(session, name)
        record_cli(session, getpass.getuser(), "apikey.revoke", name)
    typer.echo(f"revoked key '{name}'")


@apikey_cli.command("list")
def apikey_list() -> None:
    """Print every key's name, role, departments and state (never the key)."""
    from app.auth.keys import list_keys

    with session_scope() as session:
        for row in list_keys(session):
            state = f"revoked {row.revoked_at:%Y-%m-%d}" if row.revoked_at else "active"
            departments = ",".join(row.departments) if row.departments else "all"
            typer.echo(f"{row.name:30} {row.role:12} {departments:20} {state}")
