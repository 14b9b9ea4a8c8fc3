"""Metrics of a flag score and of multi-label decisions against gold labels: pure numpy (scikit-learn for AUC/AP)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def precision_at(tpr: np.ndarray, fpr: np.ndarray, prevalence: float) -> np.ndarray:
    """Precision expected when positives make up `prevalence` of the reports, from TPR and FPR."""
    tp = prevalence * tpr
    fp = (1 - prevalence) * fpr
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(tp + fp > 0, tp / (tp + fp), 1.0)


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


def _r(value: float) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else round(float(value), 4)
