"""The `avvik` command: serve, migrate, and manage the taxonomy."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.settings import Settings

cli = typer.Typer(help="Avvik: deviation categorisation service.", no_args_is_help=True)
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
    with _session() as session:
        generated = ensure_bootstrap_key(session, settings.bootstrap_api_key)
    if generated:
        typer.echo("No API key existed, so an admin key was created. It is shown this once; keep it:\n\n"
                   f"    {generated}\n\n"
                   f"Try: curl -H 'Authorization: Bearer {generated}' "
                   f"http://{host or settings.host}:{port or settings.port}/api/v1/taxonomy\n"
                   "Create keys for clients with `avvik apikey create`, then revoke this one "
                   "(`avvik apikey revoke bootstrap-admin`).\n")
    if workers > 1 and settings.metrics_enabled:
        prepare_multiprocess_metrics()
    server.serve(settings, host or settings.host, port or settings.port, workers)


def prepare_multiprocess_metrics() -> None:
    """Workers count into files of a shared directory, so that /metrics in any of them sums them all.

    PROMETHEUS_MULTIPROC_DIR must be set before the workers import prometheus_client; an operator's own
    directory is kept, otherwise a fresh one under var/ (old files would add a dead process's counts)."""
    import os
    import shutil

    from app.observability.metrics import MULTIPROCESS_ENV

    if os.environ.get(MULTIPROCESS_ENV):
        return
    directory = Path("var") / "prometheus"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.environ[MULTIPROCESS_ENV] = str(directory.resolve())


def _session():  # type: ignore[no-untyped-def]
    from app.db import begin_session, make_engine, make_sessionmaker

    return begin_session(make_sessionmaker(make_engine(Settings().database_url)), writes=True)


@taxonomy_cli.command("list")
def taxonomy_list(kind: Annotated[str | None, typer.Argument(help="category, target_group, service, "
                                                              "department or agency")] = None) -> None:
    """Print codes with their labels; retired codes are marked."""
    from app.taxonomy.models import CodeKind
    from app.taxonomy.service import load_taxonomy

    kinds = [CodeKind(kind)] if kind else list(CodeKind)
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
    kind: str, code: str, label: str,
    parent: Annotated[str | None, typer.Option(help="Parent category, or an agency's department")] = None,
    children_and_youth: Annotated[bool, typer.Option(help="Target groups only")] = False,
) -> None:
    """Add a code without a release."""
    from app.errors import DomainError
    from app.taxonomy.models import CodeKind
    from app.taxonomy.schemas import CodeIn
    from app.taxonomy.service import add_code

    try:
        with _session() as session:
            change = add_code(session, CodeKind(kind), CodeIn(code=code, label=label, parent=parent,
                                                              children_and_youth=children_and_youth))
    except DomainError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"added {change.kind.value} {change.code}")


@taxonomy_cli.command("retire")
def taxonomy_retire(
    kind: str, code: str,
    replaced_by: Annotated[str | None, typer.Option(help="The code to use instead")] = None,
) -> None:
    """Retire a code: it stays on old reports and is refused on new ones."""
    from app.errors import DomainError
    from app.taxonomy.models import CodeKind
    from app.taxonomy.service import retire_code

    try:
        with _session() as session:
            change = retire_code(session, CodeKind(kind), code, replaced_by)
    except DomainError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"retired {change.kind.value} {change.code}")


@cli.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A .csv or .xlsx export")],
    mapping: Annotated[Path | None, typer.Option(
        exists=True, dir_okay=False, help="TOML: [columns] field = \"Heading\"; default: API names")] = None,
    rejected: Annotated[Path | None, typer.Option(
        help="Where to write rejected rows (default: FILE.rejected.csv)")] = None,
    score: Annotated[bool, typer.Option(help="Score imported reports with the classifier")] = True,
) -> None:
    """Import a historical export through the same validation and upsert as the API; safe to re-run."""
    from zoneinfo import ZoneInfo

    from tqdm import tqdm

    from app.db import make_engine, make_sessionmaker
    from app.ingest.importer import ImportFileError, Mapping, import_file, read_rows

    settings = Settings()
    try:
        chosen = Mapping.load(mapping) if mapping else Mapping.default()
        total = sum(1 for _ in read_rows(file))
    except ImportFileError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    scorer = None
    if score and settings.scoring_enabled:
        from app.registry.service import ActiveModelCache
        from app.review.scoring import ingest_scorer

        cache = ActiveModelCache(Path(settings.model_dir).parent / "registry")
        scorer = ingest_scorer(cache, settings.model_dir, settings.flag_threshold, by="import")
    rejected = rejected or file.with_suffix(".rejected.csv")
    maker = make_sessionmaker(make_engine(settings.database_url))
    with tqdm(total=total, unit="report", desc=file.name) as bar:
        summary = import_file(maker, file, chosen, ZoneInfo(settings.local_timezone), scorer, rejected, bar.update)
    counts = ", ".join(f"{k} {v}" for k, v in sorted(summary.counts.items())) or "nothing"
    typer.echo(f"{file.name}: {counts}")
    for line, reasons in summary.invalid[:20]:
        typer.echo(f"  line {line}: {reasons}")
    if summary.invalid:
        more = f" (and {len(summary.invalid) - 20} more)" if len(summary.invalid) > 20 else ""
        typer.echo(f"rejected rows{more} written to {rejected}")


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
    cv = model.metrics.get("cv", {}) if isinstance(model.metrics, dict) else {}
    typer.echo(f"registered {row.version} (threshold {row.threshold:.3f}); cross-validated: {cv or 'n/a'}")
    typer.echo(f"promote it with: avvik model promote {row.version}")


@model_cli.command("list")
def model_list() -> None:
    """Registered models, newest first; * marks the active one."""
    from app.registry.service import active_version, list_versions

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
    from app.errors import DomainError
    from app.registry import feedback
    from app.registry.service import promote

    settings = Settings()
    chosen = dev_set or (Path(settings.dev_set_path) if settings.dev_set_path else None)
    try:
        with _session() as session:
            judged_on = feedback.judging_set(session, chosen)
            result = promote(session, version, f"cli:{getpass.getuser()}", judged_on, force)
            record_cli(session, getpass.getuser(), "model.promote", version)
    except DomainError as exc:
        typer.echo(f"refused: {exc.message}", err=True)
        raise typer.Exit(1) from exc
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

    model = _registered_model(version)
    result = evaluate(model, load_corpus([data]))
    flag = result["samhandling_barn_unge"]
    typer.echo(f"{model.version} on {data.name} (n={result['n']}): " + ", ".join(
        f"{k} {v}" for k, v in flag.items() if not isinstance(v, dict | list)))
    if json_out:
        json_out.write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str), encoding="utf-8")


def _registered_model(version: str | None):  # type: ignore[no-untyped-def]
    """A registered model version (default: the active one), or exit 1 naming what is missing."""
    import tempfile

    from app.registry.models import ModelVersion
    from app.registry.service import active_version, unpack

    with _session() as session:
        chosen = version or active_version(session)
        row = session.get(ModelVersion, chosen) if chosen else None
        if row is None:
            typer.echo(f"error: no model version {chosen}", err=True)
            raise typer.Exit(1)
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
    since: Annotated[str | None, typer.Option(help="Only reports filed on or after this date (YYYY-MM-DD)")] = None,
    version: Annotated[str | None, typer.Option("--model", help="A registered version (default: active)")] = None,
    batch: Annotated[int, typer.Option(min=1, max=5000)] = 500,
) -> None:
    """Score stored reports again; resumes an interrupted run; adviser decisions are never touched."""
    from datetime import date
    from zoneinfo import ZoneInfo

    from sqlalchemy import func, select
    from tqdm import tqdm

    from app.db import make_engine, make_sessionmaker
    from app.errors import DomainError
    from app.registry.rescore import rescore as run_rescore
    from app.report.models import Report

    settings = Settings()
    start = date.fromisoformat(since) if since else None
    maker = make_sessionmaker(make_engine(settings.database_url))
    with maker() as session:
        total = session.scalar(select(func.count()).select_from(Report)) or 0
    try:
        with tqdm(total=total, unit="report", desc="rescore") as bar:
            run = run_rescore(maker, version, start, ZoneInfo(settings.local_timezone), batch, bar.update)
    except DomainError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"scored {run.scored} reports with {run.model_version}")


@apikey_cli.command("create")
def apikey_create(
    name: Annotated[str, typer.Option(help="Who uses the key, e.g. bkkvalitet-integration")],
    role: Annotated[str, typer.Option(help="integration, adviser, dashboard or admin")],
    department: Annotated[list[str] | None, typer.Option(help="Limit an adviser to departments (repeat)")] = None,
) -> None:
    """Create a key; it is printed once and only its hash is stored."""
    import getpass

    from app.audit.service import record_cli
    from app.auth.keys import create_key
    from app.auth.principal import Role
    from app.errors import DomainError

    try:
        with _session() as session:
            row, plaintext = create_key(session, name, Role(role), department or None)
            record_cli(session, getpass.getuser(), "apikey.create", f"{row.name}:{row.role}")
    except (DomainError, ValueError) as exc:
        typer.echo(f"error: {getattr(exc, 'message', exc)}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(plaintext)
    typer.echo(f"created key '{row.name}' ({row.role}); it is not shown again", err=True)


@apikey_cli.command("revoke")
def apikey_revoke(name: str) -> None:
    """Revoke a key by name; it stops working at once."""
    import getpass

    from app.audit.service import record_cli
    from app.auth.keys import revoke_key
    from app.errors import DomainError

    try:
        with _session() as session:
            revoke_key(session, name)
            record_cli(session, getpass.getuser(), "apikey.revoke", name)
    except DomainError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
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
