"""`avvik import`: a historical export through the API's validation and upsert."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.cli.base import ensure_model, open_sessionmaker
from app.settings import Settings


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
    maker = open_sessionmaker()
    scorer = None
    if score and settings.scoring_enabled:
        from app.registry.cache import ActiveModelCache
        from app.registry.scoring import ingest_scorer

        ensure_model(settings, by="import")
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
