"""Running the Alembic migrations from code: the CLI, readiness and the tests all use this."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine

import migrations

SCRIPT_LOCATION = Path(migrations.__file__).parent
# Written once, never changed: the runtime role may add to them and read them, nothing else.
APPEND_ONLY_TABLES = ("audit_event", "audit_event_report")


class GrantError(Exception):
    """The grants cannot be applied; the message says why."""


def alembic_config(database_url: str) -> Config:
    """An Alembic configuration for a database, independent of the current directory."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Migrate a database up (creating the SQLite file's folder when needed)."""
    ensure_sqlite_folder(database_url)
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    """Migrate a database down."""
    command.downgrade(alembic_config(database_url), revision)


def head_revisions(database_url: str) -> set[str]:
    """The revisions a fully migrated database is at."""
    return set(ScriptDirectory.from_config(alembic_config(database_url)).get_heads())


def current_revisions(engine: Engine) -> set[str]:
    """The revisions the database is at now."""
    with engine.connect() as connection:
        return set(MigrationContext.configure(connection).get_current_heads())


def ensure_sqlite_folder(database_url: str) -> None:
    """SQLite creates the file but not its folder (the default lives under var/)."""
    prefix = "sqlite:///"
    if database_url.startswith(prefix) and ":memory:" not in database_url:
        Path(database_url.removeprefix(prefix).split("?")[0]).parent.mkdir(parents=True, exist_ok=True)


def grant_runtime_role(owner_url: str, role: str) -> None:
    """Let a PostgreSQL role run the service and nothing more: read and write rows, never own, alter,
    truncate or disable a trigger; append-only tables only INSERT and SELECT. Run as the schema's owner
    after migrating; default privileges give the role the same rights on tables later migrations create."""
    engine = create_engine(owner_url)
    try:
        if engine.dialect.name != "postgresql":
            raise GrantError("roles are PostgreSQL's; SQLite has none")
        with engine.begin() as connection:
            exists = connection.exec_driver_sql("SELECT 1 FROM pg_roles WHERE rolname = %(r)s", {"r": role}).scalar()
            if not exists:
                raise GrantError(f"no role named {role!r}: create it first (see the README)")
            owner = connection.exec_driver_sql("SELECT current_user").scalar()
            if owner == role:
                raise GrantError("the runtime role must not be the owner the grants run as")
            quote = connection.dialect.identifier_preparer.quote
            grantee = quote(role)
            dml = "SELECT, INSERT, UPDATE, DELETE"
            later = f"ALTER DEFAULT PRIVILEGES FOR ROLE {quote(str(owner))} IN SCHEMA public GRANT"
            statements = [
                f"GRANT USAGE ON SCHEMA public TO {grantee}",
                f"GRANT {dml} ON ALL TABLES IN SCHEMA public TO {grantee}",
                f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {grantee}",
                # Tables and sequences later migrations create (they run as this owner) get the same.
                f"{later} {dml} ON TABLES TO {grantee}",
                f"{later} USAGE, SELECT ON SEQUENCES TO {grantee}",
                # Migrations' bookkeeping is the owner's: the service only reads which revision it is at.
                f"REVOKE INSERT, UPDATE, DELETE ON alembic_version FROM {grantee}",
                *(f"REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON {quote(t)} FROM {grantee}"
                  for t in APPEND_ONLY_TABLES),
            ]
            for statement in statements:
                connection.exec_driver_sql(statement)
    finally:
        engine.dispose()
