"""`avvik classify` (without storing) and `avvik rescore` (stored reports)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from app.cli.base import ensure_model, open_sessionmaker, parse_date
from app.cli.models import registered_model
from app.settings import Settings


def classify(
    input_path: Annotated[Path | None, typer.Option("--input", help="JSONL reports. Default: stdin.")] = None,
    output_path: Annotated[Path | None, typer.Option("--output", help="JSONL predictions. Default: stdout.")] = None,
    version: Annotated[str | None, typer.Option("--model", help="A registered version (default: active)")] = None,
    threshold: Annotated[float | None, typer.Option(help="Flag threshold; default: the model's.")] = None,
) -> None:
    """Classify JSON lines (id, title, description, reported_category, reporting_unit) without storing them."""
    from classifier.cli import classify_files

    model = registered_model(version)
    total, errors = classify_files(model, input_path, output_path, threshold)
    typer.echo(f"classified {total - errors} reports with {model.version}, {errors} bad lines", err=True)


def rescore(
    since: Annotated[date | None, typer.Option(
        parser=parse_date, metavar="DATE", help="Only reports filed on or after this date (YYYY-MM-DD or DD.MM.YYYY)",
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
        ensure_model(settings, by="cli")
    maker = open_sessionmaker()
    with maker() as session:
        total = session.scalar(select(func.count()).select_from(Report)) or 0
    with tqdm(total=total, unit="report", desc="rescore") as bar:
        run = run_rescore(maker, version, since, ZoneInfo(settings.local_timezone), batch, bar.update)
    typer.echo(f"scored {run.scored} reports with {run.model_version}")
