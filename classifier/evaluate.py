"""Metrics on labelled reports: the flag, target groups, services, the keyword baseline, slices, learning curve."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from classifier.features import analyse
from classifier.model import LABELS, TrainedModel, label_matrices, precision_at, rule_hits, train
from classifier.records import LabelledReport, as_labelled
from classifier.taxonomy import SERVICES, TARGET_GROUPS, is_communication_category
from classifier.text import language, word_count

# The search an adviser can run today (issue 3): one word of each list, case-insensitive substrings.
BASELINE_TOPIC = ("samhandl", "samarbeid", "informasjon", "beskjed")
BASELINE_PEOPLE = ("barn", "elev", "ungdom")
SHORT_WORDS = 20


def keyword_baseline(title: str, description: str) -> bool:
    """True when title or description holds a collaboration word and a child/youth word."""
    text = f"{title}\n{description}".lower()
    return any(w in text for w in BASELINE_TOPIC) and any(w in text for w in BASELINE_PEOPLE)


def flag_metrics(y: np.ndarray, scores: np.ndarray, threshold: float, prevalence: float = 0.05) -> dict[str, Any]:
    """Precision, recall, F1, ROC AUC, average precision, confusion matrix, and precision at `prevalence`."""
    # Imported here so that a server, which imports this module, does not carry scikit-learn (~60 MB).
    from sklearn.metrics import average_precision_score, roc_auc_score

    truth = np.asarray(y).astype(bool)
    scores = np.asarray(scores, dtype=float)
    flagged = scores >= threshold
    tp = int((truth & flagged).sum())
    fp = int((~truth & flagged).sum())
    fn = int((truth & ~flagged).sum())
    tn = int((~truth & ~flagged).sum())
    precision = tp / (tp + fp) if tp + fp else math.nan
    recall = tp / (tp + fn) if tp + fn else math.nan
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else math.nan
    tpr = tp / (tp + fn) if tp + fn else math.nan
    fpr = fp / (fp + tn) if fp + tn else math.nan
    both = 0 < truth.sum() < len(truth)
    return {
        "n": len(truth), "positives": int(truth.sum()), "threshold": round(float(threshold), 6),
        "precision": _r(precision), "recall": _r(recall), "f1": _r(f1),
        "roc_auc": _r(roc_auc_score(truth, scores)) if both else None,
        "average_precision": _r(average_precision_score(truth, scores)) if both else None,
        "confusion": {"tp": tp, "fp": fp, "fn": fn, "tn": tn},
        "prevalence": prevalence,
        "precision_at_prevalence": _r(float(precision_at(np.array(tpr), np.array(fpr), prevalence)))
        if not (math.isnan(tpr) or math.isnan(fpr)) else None,
        "recall_at_prevalence": _r(recall),
    }


def multilabel_metrics(truth: np.ndarray, decided: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    """Micro and macro precision/recall/F1 (macro over labels present in truth or prediction), per label."""
    truth = np.asarray(truth).astype(bool)
    decided = np.asarray(decided).astype(bool)
    tp = (truth & decided).sum(axis=0)
    fp = (~truth & decided).sum(axis=0)
    fn = (truth & ~decided).sum(axis=0)
    micro_p = tp.sum() / (tp.sum() + fp.sum()) if tp.sum() + fp.sum() else math.nan
    micro_r = tp.sum() / (tp.sum() + fn.sum()) if tp.sum() + fn.sum() else math.nan
    micro_f1 = 2 * tp.sum() / (2 * tp.sum() + fp.sum() + fn.sum()) if (tp + fp + fn).sum() else math.nan
    per_label = {}
    f1s = []
    for k, name in enumerate(names):
        if tp[k] + fp[k] + fn[k] == 0:
            continue
        f1 = 2 * tp[k] / (2 * tp[k] + fp[k] + fn[k])
        f1s.append(f1)
        per_label[name] = {"support": int(tp[k] + fn[k]), "predicted": int(tp[k] + fp[k]), "f1": _r(f1)}
    return {
        "micro_precision": _r(micro_p), "micro_recall": _r(micro_r), "micro_f1": _r(micro_f1),
        "macro_f1": _r(float(np.mean(f1s))) if f1s else None, "per_label": per_label,
    }


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


def _r(value: float) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else round(float(value), 4)
