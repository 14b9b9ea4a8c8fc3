"""A model measured on labelled reports: flag, target groups, services, keyword baseline, slices, learning curve."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from classifier.features import analyse
from classifier.metrics import flag_metrics, multilabel_metrics
from classifier.model import LABELS, TrainedModel, rule_hits
from classifier.records import LabelledReport, as_labelled
from classifier.taxonomy import SERVICES, TARGET_GROUPS, is_communication_category
from classifier.text import language, word_count
from classifier.training import label_matrices, train

# The search an adviser can run today (issue 3): one word of each list, case-insensitive substrings.
BASELINE_TOPIC = ("samhandl", "samarbeid", "informasjon", "beskjed")
BASELINE_PEOPLE = ("barn", "elev", "ungdom")
SHORT_WORDS = 20


def keyword_baseline(title: str, description: str) -> bool:
    """True when title or description holds a collaboration word and a child/youth word."""
    text = f"{title}\n{description}".lower()
    return any(w in text for w in BASELINE_TOPIC) and any(w in text for w in BASELINE_PEOPLE)


def evaluate(model: TrainedModel, records: Sequence[LabelledReport | Mapping[str, Any]]) -> dict[str, Any]:
    """Every metric of issue 3 on labelled reports: model, keyword baseline, and slices."""
    labelled = as_labelled(records)
    if not labelled:
        raise ValueError("no records to evaluate")
    y_main, y_labels = label_matrices(labelled)
    docs = [analyse(r.text) for r in labelled]
    scores, label_p, *_ = model.scores(docs)
    decided = model.decide_labels(label_p, docs)
    prevalence = model.config.prevalence
    n_groups = len(TARGET_GROUPS)
    baseline = np.array([keyword_baseline(r.title, r.description) for r in labelled], dtype=float)
    rules = rule_hits(docs)
    result: dict[str, Any] = {
        "model_version": model.version,
        "n": len(labelled),
        "samhandling_barn_unge": flag_metrics(y_main[:, 2], scores, model.threshold, prevalence),
        "target_groups": multilabel_metrics(y_labels[:, :n_groups], decided[:, :n_groups], TARGET_GROUPS),
        "services": multilabel_metrics(y_labels[:, n_groups:], decided[:, n_groups:], SERVICES),
        "baseline": {
            "samhandling_barn_unge": flag_metrics(y_main[:, 2], baseline, 0.5, prevalence),
            "target_groups_rules_only": multilabel_metrics(y_labels[:, :n_groups], rules[:, :n_groups],
                                                           TARGET_GROUPS),
            "services_gazetteer_only": multilabel_metrics(y_labels[:, n_groups:], rules[:, n_groups:], SERVICES),
        },
        "slices": slices(labelled, scores, model.threshold, prevalence),
    }
    assert len(LABELS) == y_labels.shape[1]
    return result


def slices(
    records: Sequence[LabelledReport], scores: np.ndarray, threshold: float, prevalence: float
) -> dict[str, dict[str, Any]]:
    """Flag metrics on bokmål/nynorsk, short/long, and misleading-category subsets."""
    y = np.array([r.labels.samhandling_barn_unge for r in records])
    lang = np.array([r.language or language(f"{r.title} {r.description}") for r in records])
    words = np.array([word_count(f"{r.title} {r.description}") for r in records])
    communication = np.array([is_communication_category(r.reported_category) for r in records])
    masks = {
        "bokmal": lang == "nb",
        "nynorsk": lang == "nn",
        f"short (<{SHORT_WORDS} words)": words < SHORT_WORDS,
        f"long (>={SHORT_WORDS} words)": words >= SHORT_WORDS,
        "misleading category (positives outside, negatives inside communication)":
            (y & ~communication) | (~y & communication),
        "positives filed outside communication": y & ~communication,
        "negatives filed inside communication": ~y & communication,
    }
    return {name: flag_metrics(y[mask], scores[mask], threshold, prevalence) for name, mask in masks.items()
            if mask.any()}


def subsample(records: Sequence[LabelledReport], fraction: float, seed: int) -> list[LabelledReport]:
    """A deterministic share of the records, taken from every source and both classes alike."""
    rng = np.random.default_rng(seed)
    strata: dict[tuple[str, bool], list[LabelledReport]] = {}
    for r in sorted(records, key=lambda r: r.id):
        strata.setdefault((r.source, r.labels.samhandling_barn_unge), []).append(r)
    chosen: list[LabelledReport] = []
    for key in sorted(strata):
        group = strata[key]
        order = rng.permutation(len(group))
        chosen.extend(group[i] for i in order[: max(1, round(fraction * len(group)))])
    return chosen


def learning_curve(
    train_records: Sequence[LabelledReport], test_records: Sequence[LabelledReport],
    fractions: Sequence[float] = (0.25, 0.5, 1.0), seed: int = 0,
) -> list[dict[str, Any]]:
    """Dev-set figures of models trained on growing shares of the corpus."""
    rows = []
    for fraction in fractions:
        part = subsample(train_records, fraction, seed) if fraction < 1 else list(train_records)
        model = train(part, seed=seed)
        metrics = evaluate(model, test_records)
        flag = metrics["samhandling_barn_unge"]
        rows.append({
            "fraction": fraction, "n_train": len(part), "threshold": round(model.threshold, 4),
            "f1": flag["f1"], "roc_auc": flag["roc_auc"], "precision_at_prevalence": flag["precision_at_prevalence"],
            "recall": flag["recall"], "target_groups_micro_f1": metrics["target_groups"]["micro_f1"],
            "services_micro_f1": metrics["services"]["micro_f1"],
            "cv_f1": model.metrics["cv"]["samhandling_barn_unge"]["f1"],
        })
    return rows
