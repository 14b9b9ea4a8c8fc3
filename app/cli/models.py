"""`avvik model`: ensure, train, list, promote and evaluate classifier models."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from app.cli.base import ensure_model, session_scope
from app.settings import Settings

if TYPE_CHECKING:
    from classifier import TrainedModel

model_cli = typer.Typer(help="Train, evaluate, list and promote classifier models.", no_args_is_help=True)


@model_cli.command("ensure")
def model_ensure() -> None:
    """Register and activate the default model (built from the committed corpus if AVVIK_MODEL_DIR holds none),
    unless a model is active. `make run` and `avvik serve` do this before serving."""
    typer.echo(f"{ensure_model(Settings(), by='cli', always=True)} is active")


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
    with session_scope() as session:
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

    ensure_model(Settings(), by="cli")
    with session_scope() as session:
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
    with session_scope() as session:
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
    model = registered_model(version)
    result = evaluate(model, records)
    flag = result["samhandling_barn_unge"]
    typer.echo(f"{model.version} on {data.name} (n={result['n']}): " + ", ".join(
        f"{k} {v}" for k, v in flag.items() if not isinstance(v, dict | list)))
    if json_out:
        json_out.write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str), encoding="utf-8")


def registered_model(version: str | None) -> TrainedModel:
    """A registered model version (default: the active one, registering the default model if none is)."""
    import tempfile

    from app.registry.artifacts import unpack
    from app.registry.models import ModelVersion
    from app.registry.service import active_version, list_versions

    if version is None:
        ensure_model(Settings(), by="cli")
    with session_scope() as session:
        chosen = version or active_version(session)
        row = session.get(ModelVersion, chosen) if chosen else None
        if row is None:
            known = ", ".join(row.version for row in list_versions(session)) or "none"
            raise typer.BadParameter(f"no model version {chosen}; registered: {known}", param_hint="'--model'")
        return unpack(row, Path(tempfile.gettempdir()) / "avvik-models")
