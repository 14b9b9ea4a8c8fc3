"""The `avvik` command: serve, migrate, and manage the taxonomy, keys and models.

Errors a user can fix end as one line and an exit code, never a traceback: bad values exit 2 naming the
valid values; refusals and an unmigrated or unreachable database exit 1.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer._click.exceptions import UsageError  # typer vendors click: this is the class its parsers raise
from typer.core import TyperGroup

from app.auth.principal import Role
from app.settings import Settings
from app.taxonomy.models import CodeKind

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from classifier import TrainedModel

NOT_MIGRATED = "the database is not migrated: run `avvik migrate` (or `make run`)"


class CliError(Exception):
    """A failure the user can fix, printed as one line `Error: …` with exit code 1 (2 for invalid input)."""


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
            typer.echo(f"Error: {_reason(exc)}", err=True)
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
taxonomy_cli = typer.Typer(help="List, add and retire taxonomy codes.", no_args_is_help=True)
cli.add_typer(taxonomy_cli, name="taxonomy")
apikey_cli = typer.Typer(help="Create, list and revoke API keys for machine clients.", no_args_is_help=True)
cli.add_typer(apikey_cli, name="apikey")
model_cli = typer.Typer(help="Train, evaluate, list and promote classifier models.", no_args_is_help=True)
cli.add_typer(model_cli, name="model")
db_cli = typer.Typer(help="Database roles (PostgreSQL).", no_args_is_help=True)
cli.add_typer(db_cli, name="db")
web_cli = typer.Typer(help="The web pages: one-time sign-in links for local use.", no_args_is_help=True)
cli.add_typer(web_cli, name="web")


@cli.command()
def migrate() -> None:
    """Apply every migration, as the schema's owner (AVVIK_MIGRATION_DATABASE_URL, else AVVIK_DATABASE_URL)."""
    from app.migrate import upgrade

    settings = Settings()
    upgrade(settings.owner_database_url)
    typer.echo(f"migrated {_safe_url(settings.owner_database_url)}")


@db_cli.command("grant")
def db_grant(role: Annotated[str, typer.Option(help="The role `avvik serve` connects as")]) -> None:
    """Give the runtime role what the service needs and no more (run as the owner, after `avvik migrate`)."""
    from app.migrate import GrantError, grant_runtime_role

    settings = Settings()
    try:
        grant_runtime_role(settings.owner_database_url, role)
    except GrantError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"granted {role} the runtime privileges on {_safe_url(settings.owner_database_url)}")


@cli.command()
def revision(message: str) -> None:
    """Write a new migration from the difference between the models and the (migrated) database."""
    from alembic import command

    from app.migrate import alembic_config

    command.revision(alembic_config(Settings().owner_database_url), message=message, autogenerate=True)


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Default: AVVIK_HOST")] = None,
    port: Annotated[int | None, typer.Option(help="Default: AVVIK_PORT")] = None,
    workers: Annotated[int, typer.Option(min=1)] = 1,
) -> None:
    """Serve the API with uvicorn (connection limits and timeouts: app/server.py)."""
    from app import server
    from app.auth.keys import ensure_bootstrap_key

    settings = Settings()
    _ensure_model(settings, by="serve")
    with _session() as session:
        generated = ensure_bootstrap_key(session, settings.bootstrap_api_key)
    if generated:
        typer.echo("No API key existed, so an admin key was created. It is shown this once; keep it:\n\n"
                   f"    {generated}\n\n"
                   f"Try: curl -H 'Authorization: Bearer {generated}' "
                   f"http://{host or settings.host}:{port or settings.port}/api/v1/taxonomy\n"
                   "Create keys for clients with `avvik apikey create`, then revoke this one "
                   "(`avvik apikey revoke bootstrap-admin`).\n")
    server.serve(settings, host or settings.host, port or settings.port, workers)


def _maker() -> sessionmaker[Session]:
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
        raise CliError(f"cannot reach the database {_safe_url(url)} ({type(exc).__name__})") from exc
    heads = head_revisions(url)
    if current != heads:
        engine.dispose()
        raise CliError(NOT_MIGRATED if not current else f"the database is at revision {', '.join(sorted(current))}, "
                       f"this version needs {', '.join(sorted(heads))}: run `avvik migrate`")
    return make_sessionmaker(engine)


@contextmanager
def _session() -> Iterator[Session]:
    """One committed transaction on the (migrated) configured database."""
    from app.db import begin_session

    with begin_session(_maker(), writes=True) as session:
        yield session


def _ensure_model(settings: Settings, by: str, *, always: bool = False) -> str | None:
    """Register and activate the default model unless one is active (with scoring on, or `always`), so that no
    request has to build it; returns the active version."""
    from app.registry.bootstrap import ensure_active_model

    if not (settings.scoring_enabled or always):
        return None
    with _session() as session:
        version, made = ensure_active_model(session, settings.model_dir, by)
    if made:
        typer.echo(f"no model was active: registered and activated the default model {version}", err=True)
    return version


def _parse_date(value: str) -> date:
    """A date as YYYY-MM-DD or the Norwegian DD.MM.YYYY."""
    from app.ingest.mapping import parse_local_datetime

    try:
        return date.fromisoformat(value)
    except ValueError:
        parsed = parse_local_datetime(value)
        if parsed is None:
            raise typer.BadParameter(f"{value!r} is not a date; use YYYY-MM-DD or DD.MM.YYYY") from None
        return parsed.date()


@taxonomy_cli.command("list")
def taxonomy_list(kind: Annotated[CodeKind | None, typer.Argument(help="Default: every kind")] = None) -> None:
    """Print codes with their labels; retired codes are marked."""
    from app.taxonomy.service import load_taxonomy

    kinds = [kind] if kind else list(CodeKind)
    with _session() as session:
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
    with _session() as session:
        change = add_code(session, kind, new)
    typer.echo(f"added {change.kind.value} {change.code}")


@taxonomy_cli.command("retire")
def taxonomy_retire(
    kind: CodeKind, code: str,
    replaced_by: Annotated[str | None, typer.Option(help="The code to use instead")] = None,
) -> None:
    """Retire a code: it stays on old reports and is refused on new ones."""
    from app.taxonomy.service import retire_code

    with _session() as session:
        change = retire_code(session, kind, code, replaced_by)
    typer.echo(f"retired {change.kind.value} {change.code}")


@cli.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A .csv or .xlsx export")],
    mapping: Annotated[Path | None, typer.Option(
        exists=True, dir_okay=False,
        help="TOML: [columns] field = \"Heading\"; default: API names and common Norwegian headings")] = None,
    rejected: Annotated[Path | None, typer.Option(
        help="Where to write rejected rows (default: FILE.rejected.csv, e.g. export.xlsx.rejected.csv)")] = None,
    score: Annotated[bool, typer.Option(help="Score imported reports with the classifier")] = True,
) -> None:
    """Import a historical export through the same validation and upsert as the API; safe to re-run.

    Exits 1 when rows were rejected (they are written to the rejects file), 2 when the file cannot be read.
    """
    from zoneinfo import ZoneInfo

    from tqdm import tqdm

    from app.ingest.importer import ImportFileError, Mapping, import_file, read_headings, read_rows

    settings = Settings()
    try:
        headings = read_headings(file)
        chosen = Mapping.load(mapping) if mapping else Mapping.detect(headings)
        missing = chosen.missing(headings)
        if missing:
            raise ImportFileError(
                f"{file.name} has no column for {', '.join(missing)}; its headings are: {', '.join(headings)}. "
                f"Name the columns in a mapping file and pass it with --mapping, e.g.:\n\n"
                f"{chosen.suggestion(headings)}\n")
        total = sum(1 for _ in read_rows(file))
    except ImportFileError as exc:
        raise typer.BadParameter(str(exc), param_hint="FILE" if not mapping else "--mapping") from exc
    if not mapping:
        typer.echo(f"columns: {chosen.describe()}", err=True)
    maker = _maker()
    scorer = None
    if score and settings.scoring_enabled:
        from app.registry.cache import ActiveModelCache
        from app.registry.scoring import ingest_scorer

        _ensure_model(settings, by="import")
        scorer = ingest_scorer(ActiveModelCache(Path(settings.model_dir).parent / "registry"), settings.flag_threshold)
    rejected = rejected or file.with_name(f"{file.name}.rejected.csv")
    with tqdm(total=total, unit="report", desc=file.name) as bar:
        summary = import_file(maker, file, chosen, ZoneInfo(settings.local_timezone), scorer, rejected, bar.update)
    counts = ", ".join(f"{k} {v}" for k, v in sorted(summary.counts.items())) or "nothing"
    typer.echo(f"{file.name}: {counts}")
    for line, reasons in summary.invalid[:20]:
        typer.echo(f"  line {line}: {reasons}")
    if summary.invalid:
        more = f" (and {len(summary.invalid) - 20} more)" if len(summary.invalid) > 20 else ""
        typer.echo(f"rejected rows{more} written to {rejected}")
        raise typer.Exit(1)


@model_cli.command("ensure")
def model_ensure() -> None:
    """Register and activate the default model (built from the committed corpus if AVVIK_MODEL_DIR holds none),
    unless a model is active. `make run` and `avvik serve` do this before serving."""
    typer.echo(f"{_ensure_model(Settings(), by='cli', always=True)} is active")


@model_cli.command("train")
def model_train(
    with_feedback: Annotated[bool, typer.Option(help="Add every adviser decision (less a held-out share)")] = False,
    corpus: Annotated[list[Path] | None, typer.Option(help="Corpus files (default: the committed corpus)")] = None,
) -> None:
    """Train a model and register it in the database as a candidate (it does not become active)."""
    import getpass

    from app.audit.service import record_cli
    from app.registry import feedback
    from app.registry.service import register
    from classifier import load_corpus, train

    records = load_corpus(corpus or None)
    with _session() as session:
        extra, held = feedback.reviewed_reports(session) if with_feedback else ([], [])
        typer.echo(f"training on {len(records)} corpus reports and {len(extra)} adviser decisions "
                   f"({len(held)} held out)", err=True)
        model = train([*records, *extra])
        row = register(session, model, source="corpus+feedback" if with_feedback else "corpus",
                       feedback_count=len(extra))
        record_cli(session, getpass.getuser(), "model.train", row.version)
    typer.echo(f"registered {row.version} (threshold {row.threshold:.3f})")
    typer.echo(metrics_table(model.metrics.get("cv") if isinstance(model.metrics, dict) else None))
    typer.echo(f"promote it with: avvik model promote {row.version}")


def metrics_table(cv: dict[str, Any] | None) -> str:
    """Cross-validated metrics as a two-column table (the full figures are in `GET /api/v1/models`)."""
    if not cv:
        return "cross-validated: n/a"
    flag, groups, services = cv["samhandling_barn_unge"], cv["target_groups"], cv["services"]
    rows = [("flag precision", flag["precision"]), ("flag recall", flag["recall"]), ("flag F1", flag["f1"]),
            ("flag ROC AUC", flag["roc_auc"]), ("flag average precision", flag["average_precision"]),
            (f"precision at {flag['prevalence']:.0%} prevalence", flag["precision_at_prevalence"]),
            (f"recall at {flag['prevalence']:.0%} prevalence", flag["recall_at_prevalence"]),
            ("target groups micro / macro F1", f"{_figure(groups['micro_f1'])} / {_figure(groups['macro_f1'])}"),
            ("services micro / macro F1", f"{_figure(services['micro_f1'])} / {_figure(services['macro_f1'])}")]
    width = max(len(name) for name, _ in rows)
    lines = [f"cross-validated ({cv['scheme']}, {cv['n_folds']} folds):",
             *(f"  {name:<{width}}  {_figure(value)}" for name, value in rows)]
    return "\n".join(lines)


def _figure(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


@model_cli.command("list")
def model_list() -> None:
    """Registered models, newest first; * marks the active one (the default model is registered if none is)."""
    from app.registry.service import active_version, list_versions

    _ensure_model(Settings(), by="cli")
    with _session() as session:
        active = active_version(session)
        for row in list_versions(session):
            mark = "*" if row.version == active else " "
            typer.echo(f"{mark} {row.version:28} {row.created_at:%Y-%m-%d %H:%M}  {row.training_source:16} "
                       f"feedback {row.feedback_count:5}  threshold {row.threshold:.3f}")


@model_cli.command("promote")
def model_promote(
    version: str,
    force: Annotated[bool, typer.Option(help="Promote even if it is worse on the held-out data")] = False,
    dev_set: Annotated[Path | None, typer.Option(help="Labelled JSONL to judge on (default AVVIK_DEV_SET_PATH)")]
    = None,
) -> None:
    """Make a model active for every server process, unless it is worse than the active one."""
    import getpass

    from app.audit.service import record_cli
    from app.registry import feedback
    from app.registry.promotion import promote

    settings = Settings()
    chosen = dev_set or (Path(settings.dev_set_path) if settings.dev_set_path else None)
    with _session() as session:
        judged_on = feedback.judging_set(session, chosen)
        result = promote(session, version, f"cli:{getpass.getuser()}", judged_on, force)
        record_cli(session, getpass.getuser(), "model.promote", version)
    typer.echo(f"{version} is active ({result})")


@model_cli.command("evaluate")
def model_evaluate(
    data: Annotated[Path, typer.Option(exists=True, dir_okay=False, help="Labelled JSONL")],
    version: Annotated[str | None, typer.Option("--model", help="A registered version (default: active)")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write every figure as JSON")] = None,
) -> None:
    """Metrics of a registered model on labelled data (precision, recall, F1, ROC AUC, prevalence, labels)."""
    import json

    from classifier import evaluate, load_corpus
    from classifier.records import CorpusError

    try:
        records = load_corpus([data])
    except CorpusError as exc:
        raise typer.BadParameter(f"not labelled data ({exc}); each line needs the corpus's fields, "
                                 "labels included (see classifier/corpus/README.md)", param_hint="'--data'") from exc
    model = _registered_model(version)
    result = evaluate(model, records)
    flag = result["samhandling_barn_unge"]
    typer.echo(f"{model.version} on {data.name} (n={result['n']}): " + ", ".join(
        f"{k} {v}" for k, v in flag.items() if not isinstance(v, dict | list)))
    if json_out:
        json_out.write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str), encoding="utf-8")


def _registered_model(version: str | None) -> TrainedModel:
    """A registered model version (default: the active one, registering the default model if none is)."""
    import tempfile

    from app.registry.artifacts import unpack
    from app.registry.models import ModelVersion
    from app.registry.service import active_version, list_versions

    if version is None:
        _ensure_model(Settings(), by="cli")
    with _session() as session:
        chosen = version or active_version(session)
        row = session.get(ModelVersion, chosen) if chosen else None
        if row is None:
            known = ", ".join(row.version for row in list_versions(session)) or "none"
            raise typer.BadParameter(f"no model version {chosen}; registered: {known}", param_hint="'--model'")
        return unpack(row, Path(tempfile.gettempdir()) / "avvik-models")


@cli.command()
def classify(
    input_path: Annotated[Path | None, typer.Option("--input", help="JSONL reports. Default: stdin.")] = None,
    output_path: Annotated[Path | None, typer.Option("--output", help="JSONL predictions. Default: stdout.")] = None,
    version: Annotated[str | None, typer.Option("--model", help="A registered version (default: active)")] = None,
    threshold: Annotated[float | None, typer.Option(help="Flag threshold; default: the model's.")] = None,
) -> None:
    """Classify JSON lines (id, title, description, reported_category, reporting_unit) without storing them."""
    import sys

    from classifier.cli import classify_stream

    model = _registered_model(version)
    source = input_path.open(encoding="utf-8") if input_path else sys.stdin
    sink = output_path.open("w", encoding="utf-8") if output_path else sys.stdout
    try:
        total, errors = classify_stream(model, source, sink, threshold)
    finally:
        if input_path:
            source.close()
        if output_path:
            sink.close()
    typer.echo(f"classified {total - errors} reports with {model.version}, {errors} bad lines", err=True)


@cli.command()
def rescore(
    since: Annotated[date | None, typer.Option(
        parser=_parse_date, metavar="DATE", help="Only reports filed on or after this date (YYYY-MM-DD or DD.MM.YYYY)",
    )] = None,
    version: Annotated[str | None, typer.Option("--model", help="A registered version (default: active)")] = None,
    batch: Annotated[int, typer.Option(min=1, max=5000)] = 500,
) -> None:
    """Score stored reports again; resumes an interrupted run; adviser decisions are never touched."""
    from zoneinfo import ZoneInfo

    from sqlalchemy import func, select
    from tqdm import tqdm

    from app.registry.rescore import rescore as run_rescore
    from app.report.models import Report

    settings = Settings()
    if version is None:
        _ensure_model(settings, by="cli")
    maker = _maker()
    with maker() as session:
        total = session.scalar(select(func.count()).select_from(Report)) or 0
    with tqdm(total=total, unit="report", desc="rescore") as bar:
        run = run_rescore(maker, version, since, ZoneInfo(settings.local_timezone), batch, bar.update)
    typer.echo(f"scored {run.scored} reports with {run.model_version}")


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

    with _session() as session:
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

    with _session() as session:
        revoke_key(session, name)
        record_cli(session, getpass.getuser(), "apikey.revoke", name)
    typer.echo(f"revoked key '{name}'")


@apikey_cli.command("list")
def apikey_list() -> None:
    """Print every key's name, role, departments and state (never the key)."""
    from app.auth.keys import list_keys

    with _session() as session:
        for row in list_keys(session):
            state = f"revoked {row.revoked_at:%Y-%m-%d}" if row.revoked_at else "active"
            departments = ",".join(row.departments) if row.departments else "all"
            typer.echo(f"{row.name:30} {row.role:12} {departments:20} {state}")


@web_cli.command("signin-link")
def web_signin_link(
    key_name: Annotated[str, typer.Option(help="An adviser or admin API key (`avvik apikey list`)")],
    base_url: Annotated[str | None, typer.Option(help="Default: http://AVVIK_HOST:AVVIK_PORT")] = None,
) -> None:
    """Print a sign-in link for the pages, valid once for ten minutes, with that key's role and departments."""
    from app.web import session as web_session

    settings = Settings()
    if not web_session.key_signin_enabled(settings):
        typer.echo("Sign-in links are off (Entra ID is configured); set AVVIK_WEB_KEY_SIGNIN=true to allow them.",
                   err=True)
        raise typer.Exit(1)
    with _session() as session:
        try:
            token = web_session.create_link(session, key_name)
        except LookupError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from exc
    typer.echo(f"{(base_url or f'http://{settings.host}:{settings.port}').rstrip('/')}/logg-inn/lenke/{token}")


def _safe_url(url: str) -> str:
    """A database URL without its password, for printing."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def main() -> None:
    """Entry point of the console script."""
    cli()
