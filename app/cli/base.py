"""What every command shares: one error wrapper (a fixable failure is one line and an exit code), the
configured database (checked to be migrated), and the default model."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from typer._click.exceptions import UsageError  # typer vendors click: this is the class its parsers raise
from typer.core import TyperGroup

from app.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

NOT_MIGRATED = "the database is not migrated: run `avvik migrate` (or `make run`)"


class CliError(Exception):
    """A failure the user can fix, printed as one line with exit code 1 (2 for invalid input): `Error: …`
    unless the command words it otherwise (`prefix`)."""

    def __init__(self, message: str, prefix: str = "Error: ") -> None:
        super().__init__(message)
        self.prefix = prefix


class _Commands(TyperGroup):
    """Turns what a user can fix into one line (`Error: …`) and an exit code, in every command."""

    def invoke(self, ctx: Any) -> Any:
        """Run the command; usage errors lose their usage block, domain and database errors their traceback."""
        from sqlalchemy.exc import SQLAlchemyError

        from app.errors import DomainError, InvalidInput

        try:
            return super().invoke(ctx)
        except UsageError as exc:
            exc.ctx = None  # one line naming the parameter and its valid values; --help has the rest
            raise
        except (CliError, DomainError, SQLAlchemyError) as exc:
            prefix = exc.prefix if isinstance(exc, CliError) else "Error: "
            typer.echo(f"{prefix}{_reason(exc)}", err=True)
            raise typer.Exit(2 if isinstance(exc, InvalidInput) else 1) from exc


def _reason(exc: Exception) -> str:
    """What went wrong, in one line; of a database error only its class, since its text may quote report text."""
    from app.errors import DomainError

    if isinstance(exc, DomainError):
        return exc.message
    if isinstance(exc, CliError):
        return str(exc)
    return NOT_MIGRATED if _missing_table(exc) else f"the database failed ({type(exc).__name__})"


def _missing_table(exc: Exception) -> bool:
    text = str(getattr(exc, "orig", exc))
    return "no such table" in text or ("relation" in text and "does not exist" in text)


cli = typer.Typer(help="Avvik: deviation categorisation service.", no_args_is_help=True, cls=_Commands,
                  rich_markup_mode=None, pretty_exceptions_show_locals=False)


def open_sessionmaker() -> sessionmaker[Session]:
    """Sessions on the configured database, once it is known to be migrated (else one line and exit 1)."""
    from sqlalchemy.exc import SQLAlchemyError

    from app.db import make_engine, make_sessionmaker
    from app.migrate import current_revisions, head_revisions

    url = Settings().database_url
    sqlite_file = url.removeprefix("sqlite:///").split("?")[0] if url.startswith("sqlite:///") else None
    if sqlite_file and ":memory:" not in sqlite_file and not Path(sqlite_file).exists():
        raise CliError(NOT_MIGRATED)
    engine = make_engine(url)
    try:
        current = current_revisions(engine)
    except SQLAlchemyError as exc:
        engine.dispose()
        raise CliError(f"cannot reach the database {safe_url(url)} ({type(exc).__name__})") from exc
    heads = head_revisions(url)
    if current != heads:
        engine.dispose()
        raise CliError(NOT_MIGRATED if not current else f"the database is at revision {', '.join(sorted(current))}, "
                       f"this version needs {', '.join(sorted(heads))}: run `avvik migrate`")
    return make_sessionmaker(engine)


@contextmanager
def session_scope() -> Iterator[Session]:
    """One committed transaction on the (migrated) configured database."""
    from app.db import begin_session

    with begin_session(open_sessionmaker(), writes=True) as session:
        yield session


def ensure_model(settings: Settings, by: str, *, always: bool = False) -> str | None:
    """Register and activate the default model unless one is active (with scoring on, or `always`), so that no
    request has to build it; returns the active version."""
    from app.registry.bootstrap import ensure_active_model

    if not (settings.scoring_enabled or always):
        return None
    with session_scope() as session:
        version, made = ensure_active_model(session, settings.model_dir, by)
    if made:
        typer.echo(f"no model was active: registered and activated the default model {version}", err=True)
    return version


def parse_date(value: str) -> date:
    """A date as YYYY-MM-DD or the Norwegian DD.MM.YYYY."""
    from app.ingest.mapping import parse_local_datetime

    try:
        return date.fromisoformat(value)
    except ValueError:
        parsed = parse_local_datetime(value)
        if parsed is None:
            raise typer.BadParameter(f"{value!r} is not a date; use YYYY-MM-DD or DD.MM.YYYY") from None
        return parsed.date()



def safe_url(url: str) -> str:
    """A database URL without its password, for printing."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
