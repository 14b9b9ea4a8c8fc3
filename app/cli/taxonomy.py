"""`avvik taxonomy`: list, add and retire codes."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.base import session_scope
from app.taxonomy.models import CodeKind

taxonomy_cli = typer.Typer(help="List, add and retire taxonomy codes.", no_args_is_help=True)


@taxonomy_cli.command("list")
def taxonomy_list(kind: Annotated[CodeKind | None, typer.Argument(help="Default: every kind")] = None) -> None:
    """Print codes with their labels; retired codes are marked."""
    from app.taxonomy.service import load_taxonomy

    kinds = [kind] if kind else list(CodeKind)
    with session_scope() as session:
        taxonomy = load_taxonomy(session)
        for k in kinds:
            for code, row in sorted(taxonomy.codes[k].items()):
                retired = f"  [retired{', use ' + row.replaced_by if row.replaced_by else ''}]" \
                    if row.retired_at else ""
                parent = f"  (under {row.parent_code})" if row.parent_code else ""
                typer.echo(f"{k.value:13} {code:38} {row.label}{parent}{retired}")


@taxonomy_cli.command("add")
def taxonomy_add(
    kind: CodeKind, code: str, label: str,
    parent: Annotated[str | None, typer.Option(help="Parent category, or an agency's department")] = None,
    children_and_youth: Annotated[bool, typer.Option(help="Target groups only")] = False,
) -> None:
    """Add a code without a release."""
    from pydantic import ValidationError

    from app.taxonomy.schemas import CodeIn
    from app.taxonomy.service import add_code

    try:
        new = CodeIn(code=code, label=label, parent=parent, children_and_youth=children_and_youth)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise typer.BadParameter(first["msg"], param_hint=str(first["loc"][0]).upper()) from exc
    with session_scope() as session:
        change = add_code(session, kind, new)
    typer.echo(f"added {change.kind.value} {change.code}")


@taxonomy_cli.command("retire")
def taxonomy_retire(
    kind: CodeKind, code: str,
    replaced_by: Annotated[str | None, typer.Option(help="The code to use instead")] = None,
) -> None:
    """Retire a code: it stays on old reports and is refused on new ones."""
    from app.taxonomy.service import retire_code

    with session_scope() as session:
        change = retire_code(session, kind, code, replaced_by)
    typer.echo(f"retired {change.kind.value} {change.code}")
