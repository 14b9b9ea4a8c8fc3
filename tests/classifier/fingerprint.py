"""Canonical predictions of the default model, to show a refactoring leaves every prediction byte-identical.

    python -m tests.classifier.fingerprint --out /tmp/before.jsonl [--dev /work/shared/data/dev-set.jsonl]

Trains the default model as the service does (`ensure_default_model`: the committed corpus, seed 0, saved
and loaded back), then writes one canonical JSON line per report of the corpus, of the real-derived track,
of the edge cases the tests use, and of the dev set when given (only predicted, never trained on), and a
last line with the SHA-256 of each part, of the full-precision scores, and of the artifact's arrays.
Run it before and after a change and compare the last lines; tests/classifier/test_fingerprint.py pins
the parts that come with a clone.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from classifier import Prediction, ReportText, TrainedModel, ensure_default_model, load_corpus
from classifier.features import analyse
from classifier.generalisation import load_track
from classifier.records import real_derived_paths
from tests.classifier import test_classifier_model, test_classifier_robustness, test_linear

# The tests' inline edge cases (parametrised texts), beside the lists they keep at module level.
INLINE_EDGE_TEXTS = [
    ("", ""), ("   ", "\n\t "), ("Avvik", ""), ("Bekymring", "Gutten på 7 år bor i 40 m ² stor leilighet."),
    ("Bekymring", "Jenta (፩) er 7 år."), ("Bekymring", "Elev i ³ 8. klasse"),
    ("", "Den andre gangen ringte den offentlige tannhelsetjenesten."), ("", "Han var over 18 år, over 18"),
    ("", "(psykisk helse og rus) svarte ikke"), ("Ikke", "ikke ikke ingen uten uten ikkje inga"),
]


def edge_cases() -> list[ReportText]:
    """The reports the tests write to probe edge cases: empty text, odd digits, nynorsk, abbreviations."""
    reports = list(test_linear.EDGE_CASES)
    reports += [report for pair in test_classifier_model.PAIRS for report in pair]
    reports += [replace_id(r, f"template{k}-{r.id}") for k, (title, description)
                in enumerate(test_classifier_robustness.TEMPLATES)
                for r in test_classifier_robustness._variants(title, description)]
    pairs = test_classifier_robustness.NYNORSK_PAIRS + test_classifier_robustness.ABBREVIATION_PAIRS
    reports += [ReportText(f"pair{k}{side}", "", text) for k, pair in enumerate(pairs)
                for side, text in zip("ab", pair, strict=True)]
    reports += [ReportText(f"inline{k}", title, description)
                for k, (title, description) in enumerate(INLINE_EDGE_TEXTS)]
    return reports


def replace_id(report: ReportText, new_id: str) -> ReportText:
    """The same report under another id."""
    return ReportText(new_id, report.title, report.description, report.reported_category, report.reporting_unit)


def canonical_line(part: str, prediction: Prediction) -> str:
    """One prediction as a JSON line whose bytes change when any served number, label or term does."""
    return json.dumps({
        "part": part, "id": prediction.id, "score": repr(prediction.score), "flagged": prediction.flagged,
        "target_groups": prediction.target_groups, "services": prediction.services,
        "explanation": [[e.term, repr(e.weight)] for e in prediction.explanation],
    }, ensure_ascii=False, sort_keys=True)


def part_lines(model: TrainedModel, part: str, reports: Sequence[ReportText]) -> list[str]:
    """The canonical lines of one part's reports, in the given order."""
    return [canonical_line(part, p) for p in model.predict(reports)]


def raw_digest(model: TrainedModel, reports: Sequence[ReportText]) -> str:
    """SHA-256 of the unrounded flag scores and label probabilities of the reports."""
    score, label_p, _ = model.scores([analyse(r) for r in reports])
    return hashlib.sha256(np.ascontiguousarray(score).tobytes() + np.ascontiguousarray(label_p).tobytes()).hexdigest()


def artifact_digest(model: TrainedModel) -> str:
    """SHA-256 of every number and term the artifact stores: arrays, vocabularies, threshold, label modes."""
    digest = hashlib.sha256()
    for array in (model.weights, model.intercepts, model.stacker, model.label_thresholds, model.features.idf):
        digest.update(np.ascontiguousarray(array).tobytes())
    vocab = [model.features.char_vocab, model.features.word_vocab, model.features.meta_vocab]
    digest.update(json.dumps([vocab, repr(model.threshold), model.label_modes], sort_keys=True).encode())
    return digest.hexdigest()


def sha256_lines(lines: Iterable[str]) -> str:
    """SHA-256 of the lines, each ended by a newline, as the file holds them."""
    return hashlib.sha256("".join(line + "\n" for line in lines).encode("utf-8")).hexdigest()


def parts(dev: Path | None) -> dict[str, list[ReportText]]:
    """The reports of each part: corpus, real-derived track, edge cases, and the dev set if given."""
    out = {
        "corpus": [r.text for r in load_corpus()],
        "track": [r.text for r in load_track(real_derived_paths())],
        "edge": edge_cases(),
    }
    if dev is not None:
        out["dev"] = [r.text for r in load_corpus([dev])]
    return out


def fingerprint(model: TrainedModel, dev: Path | None = None) -> tuple[list[str], dict[str, str]]:
    """Every canonical line, and the digests of each part, of the raw scores and of the artifact."""
    lines: list[str] = []
    digests: dict[str, str] = {}
    for name, reports in parts(dev).items():
        chunk = part_lines(model, name, reports)
        lines += chunk
        digests[name] = sha256_lines(chunk)
        digests[f"{name}_raw"] = raw_digest(model, reports)
    digests["artifact"] = artifact_digest(model)
    digests["all_lines"] = sha256_lines(lines)
    return lines, digests


def main(argv: Sequence[str] | None = None) -> None:
    """Train the default model in a temporary directory and write the fingerprint."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, required=True, help="JSONL file to write (outside the repository)")
    parser.add_argument("--dev", type=Path, help="Labelled JSONL to predict as well (never trained on)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        model = ensure_default_model(Path(tmp) / "default")
    lines, digests = fingerprint(model, args.dev if args.dev and args.dev.exists() else None)
    summary = json.dumps({"digests": digests}, sort_keys=True)
    args.out.write_text("".join(line + "\n" for line in [*lines, summary]), encoding="utf-8")
    sys.stdout.write(json.dumps(digests, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
