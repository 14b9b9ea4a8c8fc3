"""Command line: train, evaluate, cross-validate, learning curve, and classify JSON lines.

`app` is `python -m classifier`; the service's `avvik classify` reuses `classify_stream` with the model
that is active in its registry.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Annotated, Any

import typer

from classifier.artifacts import ArtifactError, ensure_default_model, load, save
from classifier.evaluate import evaluate, learning_curve
from classifier.generalisation import feedback_simulation, generalisation, load_track
from classifier.model import TrainedModel
from classifier.records import CorpusError, ReportText, load_corpus, real_derived_paths
from classifier.training import train

MODEL_ENV = "AVVIK_MODEL_DIR"
BATCH = 1000

app = typer.Typer(help="Classifier for collaboration deviations about children and youth.", no_args_is_help=True)
model_app = typer.Typer(help="Train and evaluate the classifier model.", no_args_is_help=True)

ModelOption = Annotated[
    Path | None,
    typer.Option("--model", help=f"Model directory. Default: ${MODEL_ENV} or var/models/default (built if missing)."),
]
CorpusOption = Annotated[
    list[Path] | None,
    typer.Option("--corpus", help="Corpus JSONL file; repeat for several. Default: the committed corpus."),
]


def default_model_dir() -> Path:
    """$AVVIK_MODEL_DIR, or var/models/default under the current directory."""
    return Path(os.environ.get(MODEL_ENV) or Path.cwd() / "var" / "models" / "default")


def resolve_model(model_dir: Path | None) -> TrainedModel:
    """Load an explicit model directory; build the default one from the corpus the first time."""
    try:
        return load(model_dir) if model_dir is not None else ensure_default_model(default_model_dir())
    except ArtifactError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def train_command(
    corpus: CorpusOption = None,
    out: Annotated[Path | None, typer.Option("--out", help="Where to save. Default: the default model directory.")]
    = None,
    seed: Annotated[int, typer.Option(help="Random seed (training is deterministic for a seed).")] = 0,
) -> None:
    """Train on the corpus, print cross-validated metrics, and save the model."""
    records = _load_corpus(corpus)
    started = time.perf_counter()
    model = train(records, seed=seed)
    seconds = time.perf_counter() - started
    target = save(model, out or default_model_dir())
    cv = model.metrics["cv"]
    flag = cv["samhandling_barn_unge"]
    typer.echo(f"trained {model.version} on {len(records)} reports in {seconds:.1f} s; saved to {target}")
    typer.echo(f"threshold {model.threshold:.4f}: {model.metrics['threshold_target']}")
    typer.echo(f"cross-validated ({cv['scheme']}, {cv['n_folds']} folds):")
    typer.echo(_flag_line(flag))
    typer.echo(_labels_line(cv))


def evaluate_command(
    data: Annotated[Path, typer.Option("--data", help="Labelled JSONL (corpus format) to measure on.")],
    model_dir: ModelOption = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Also write the full report as JSON here.")] = None,
) -> None:
    """Print precision, recall, F1, ROC AUC, confusion matrix, figures at 5 % prevalence, labels, baseline, slices."""
    model = resolve_model(model_dir)
    records = _load_corpus([data])
    report = evaluate(model, records)
    typer.echo(format_report(report))
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def classify_command(
    input_path: Annotated[Path | None, typer.Option("--input", help="JSONL reports. Default: stdin.")] = None,
    output_path: Annotated[Path | None, typer.Option("--output", help="JSONL predictions. Default: stdout.")] = None,
    model_dir: ModelOption = None,
    threshold: Annotated[float | None, typer.Option(help="Flag threshold; default: the model's.")] = None,
) -> None:
    """Classify reports, one JSON object a line; a bad line gets an error line and the rest go on."""
    model = resolve_model(model_dir)
    total, errors = classify_files(model, input_path, output_path, threshold)
    typer.echo(f"classified {total - errors} reports, {errors} bad lines", err=True)


def classify_files(model: TrainedModel, input_path: Path | None, output_path: Path | None,
                   threshold: float | None) -> tuple[int, int]:
    """`classify_stream` from a file or stdin to a file or stdout: (lines read, bad lines)."""
    source = input_path.open(encoding="utf-8") if input_path else sys.stdin
    sink = output_path.open("w", encoding="utf-8") if output_path else sys.stdout
    try:
        return classify_stream(model, source, sink, threshold)
    finally:
        if input_path:
            source.close()
        if output_path:
            sink.close()


def classify_stream(model: TrainedModel, source: IO[str], sink: IO[str],
                    threshold: float | None = None) -> tuple[int, int]:
    """Classify JSON lines from source into sink in batches; returns (lines read, bad lines)."""
    errors = total = 0
    for batch in _batches(source):
        reports = [item for item in batch if isinstance(item, ReportText)]
        predictions = iter(model.predict(reports, threshold=threshold))
        for item in batch:
            total += 1
            if isinstance(item, ReportText):
                line: dict[str, Any] = next(predictions).to_dict()
            else:
                errors += 1
                line = item
            sink.write(json.dumps(line, ensure_ascii=False) + "\n")
        sink.flush()
    return total, errors


def cv_command(
    corpus: CorpusOption = None,
    scheme: Annotated[str, typer.Option(help="theme (leave one corpus file out) or random (stratified 5-fold).")]
    = "theme",
    seed: int = 0,
) -> None:
    """Print cross-validated metrics for a fold scheme (the model is not saved)."""
    model = train(_load_corpus(corpus), seed=seed, cv_scheme=scheme)
    cv = model.metrics["cv"]
    typer.echo(f"{cv['scheme']}, {cv['n_folds']} folds, threshold {model.threshold:.4f}")
    typer.echo(_flag_line(cv["samhandling_barn_unge"]))
    typer.echo(_labels_line(cv))


def learning_curve_command(
    data: Annotated[Path, typer.Option("--data", help="Labelled JSONL to measure on.")],
    corpus: CorpusOption = None,
    seed: int = 0,
) -> None:
    """Train on 25 %, 50 % and 100 % of the corpus and print the figures on --data."""
    rows = learning_curve(_load_corpus(corpus), _load_corpus([data]), seed=seed)
    typer.echo("| share | reports | threshold | F1 | ROC AUC | precision @5 % | recall | groups µF1 | services µF1 |")
    typer.echo("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        typer.echo(f"| {r['fraction']:.0%} | {r['n_train']} | {r['threshold']} | {r['f1']} | {r['roc_auc']} | "
                   f"{r['precision_at_prevalence']} | {r['recall']} | {r['target_groups_micro_f1']} | "
                   f"{r['services_micro_f1']} |")


TrackOption = Annotated[
    list[Path] | None,
    typer.Option("--track", help="Real-derived JSONL file; repeat for several. Default: corpus/real_derived/*.jsonl."),
]


def generalisation_command(
    track: TrackOption = None,
    corpus: CorpusOption = None,
    reverse: Annotated[bool, typer.Option(help="Also train on the track and measure on the corpus.")] = True,
    loso: Annotated[bool, typer.Option(help="Also cross-validate over the track, sources kept whole.")] = True,
    seed: int = 0,
    json_path: Annotated[Path | None, typer.Option("--json", help="Also write the figures as JSON here.")] = None,
) -> None:
    """Train on the hand-written corpus, measure on the real-derived track (and the reverse, and leave-source-out)."""
    hand, real = _load_corpus(corpus), _load_track(track)
    result = generalisation(hand, real, seed=seed, reverse=reverse, loso=loso)
    typer.echo(f"hand-written corpus {result['n_hand']} reports; real-derived track {result['n_track']} reports "
               f"from {result['track_sources']} sources; forward model {result['model_version']}")
    typer.echo("| direction | n (positive) | F1 | ROC AUC | precision @ 5 % at 85 % recall |")
    typer.echo("|---|---|---|---|---|")
    typer.echo(_interval_row("hand-written -> real-derived", result["forward"]["flag"]))
    if "reverse" in result:
        typer.echo(_interval_row("real-derived -> hand-written", result["reverse"]["flag"]))
    if "leave_source_out" in result:
        loso_result = result["leave_source_out"]
        typer.echo(_interval_row(f"leave-source-out over real-derived ({loso_result['folds']} folds)",
                                 loso_result["flag"]))
    forward = result["forward"]
    typer.echo(_flag_line(forward["at_threshold"]))
    for name in ("target_groups", "services"):
        m = forward[name]
        typer.echo(f"{name} on the track: micro P {m['micro_precision']} R {m['micro_recall']} F1 {m['micro_f1']}")
        typer.echo("  " + ", ".join(f"{code} {v['f1']} ({v['support']}/{v['predicted']})"
                                    for code, v in m["per_label"].items()))
    if json_path is not None:
        forward.pop("scores")
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def feedback_simulation_command(
    track: TrackOption = None,
    corpus: CorpusOption = None,
    size: Annotated[list[int] | None, typer.Option("--size", help="Adviser decisions to add; repeat.")] = None,
    weight: Annotated[list[float] | None, typer.Option("--weight", help="Weight of a decision; repeat.")] = None,
    seed: int = 0,
) -> None:
    """Half the track (whole sources) as adviser decisions, retrain with some, measure on the other half."""
    rows = feedback_simulation(_load_corpus(corpus), _load_track(track), sizes=size or [0, 50, 100, 200],
                               weights=weight or [1.0], seed=seed)
    typer.echo("| decisions | weight | held out (positive) | F1 | ROC AUC | precision @ 5 % at 85 % recall |")
    typer.echo("|---|---|---|---|---|---|")
    for row in rows:
        typer.echo(_interval_row(f"{row['decisions']} | {row['weight']:g}", row["flag"]))
        sys.stdout.flush()


def _interval_row(name: str, flag: dict[str, Any]) -> str:
    cells = [f"{flag[k]['value']:.3f} [{flag[k]['low']:.3f}, {flag[k]['high']:.3f}]"
             for k in ("f1", "roc_auc", "precision_at_5pct_recall_85")]
    return f"| {name} | {flag['n']} ({flag['positives']}) | " + " | ".join(cells) + " |"


def _load_track(paths: list[Path] | None) -> list[Any]:
    chosen = paths or real_derived_paths()
    if not chosen:
        typer.echo("error: no real-derived track: give --track FILE or add classifier/corpus/real_derived/*.jsonl",
                   err=True)
        raise typer.Exit(2)
    try:
        return load_track(chosen)
    except (CorpusError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def format_report(report: dict[str, Any]) -> str:
    """Human-readable summary of an `evaluate` report."""
    flag = report["samhandling_barn_unge"]
    base = report["baseline"]["samhandling_barn_unge"]
    lines = [
        f"model {report['model_version']} on {report['n']} reports ({flag['positives']} positive)",
        "samhandling_barn_unge:",
        _flag_line(flag),
        f"  confusion: {flag['confusion']}",
        "keyword baseline:",
        _flag_line(base),
        f"  confusion: {base['confusion']}",
    ]
    for name in ("target_groups", "services"):
        m = report[name]
        lines.append(f"{name}: micro P {m['micro_precision']} R {m['micro_recall']} F1 {m['micro_f1']}, "
                     f"macro F1 {m['macro_f1']}")
    rules = report["baseline"]
    lines.append(f"rules only: target groups micro F1 {rules['target_groups_rules_only']['micro_f1']}, "
                 f"services (gazetteer) micro F1 {rules['services_gazetteer_only']['micro_f1']}")
    lines.append("slices:")
    for name, m in report["slices"].items():
        lines.append(f"  {name}: n={m['n']} pos={m['positives']} P={m['precision']} R={m['recall']} F1={m['f1']} "
                     f"AUC={m['roc_auc']} confusion={m['confusion']}")
    return "\n".join(lines)


def _flag_line(m: dict[str, Any]) -> str:
    return (f"  precision {m['precision']}  recall {m['recall']}  F1 {m['f1']}  ROC AUC {m['roc_auc']}  "
            f"AP {m['average_precision']}  at {m['prevalence']:.0%} prevalence: precision "
            f"{m['precision_at_prevalence']} recall {m['recall_at_prevalence']}")


def _labels_line(m: dict[str, Any]) -> str:
    groups, services = m["target_groups"], m["services"]
    return (f"  target groups micro F1 {groups['micro_f1']}, macro F1 {groups['macro_f1']}; "
            f"services micro F1 {services['micro_f1']}, macro F1 {services['macro_f1']}")


def _load_corpus(paths: list[Path] | None) -> list[Any]:
    try:
        return load_corpus(paths or None)
    except (CorpusError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def _batches(source: IO[str]) -> Iterator[list[ReportText | dict[str, Any]]]:
    """Parsed input lines in batches: a ReportText, or the error line to write in its place."""
    batch: list[ReportText | dict[str, Any]] = []
    for number, line in enumerate(source, 1):
        if not line.strip():
            continue
        batch.append(_parse_line(line, number))
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _parse_line(line: str, number: int) -> ReportText | dict[str, Any]:
    try:
        item = json.loads(line)
    except json.JSONDecodeError as exc:
        return {"line": number, "error": f"not valid JSON: {exc.msg}"}
    if not isinstance(item, dict):
        return {"line": number, "error": "not a JSON object"}
    problems = [name for name in ("title", "description") if not isinstance(item.get(name), str)]
    if not isinstance(item.get("id"), str | int) or isinstance(item.get("id"), bool):
        problems.insert(0, "id")
    for name in ("reported_category", "reporting_unit"):
        if item.get(name) is not None and not isinstance(item[name], str):
            problems.append(name)
    if problems:
        error = {"line": number, "error": f"missing or not text: {', '.join(problems)}"}
        if isinstance(item.get("id"), str | int):
            error["id"] = item["id"]
        return error
    return ReportText(str(item["id"]), item["title"], item["description"], item.get("reported_category"),
                      item.get("reporting_unit"))


for _name, _function in (("train", train_command), ("evaluate", evaluate_command)):
    model_app.command(_name)(_function)
    app.command(_name)(_function)
app.command("classify")(classify_command)
app.command("cv")(cv_command)
app.command("learning-curve")(learning_curve_command)
app.command("generalisation")(generalisation_command)
app.command("feedback-simulation")(feedback_simulation_command)


def main() -> None:
    """Entry point of `python -m classifier`."""
    app()
