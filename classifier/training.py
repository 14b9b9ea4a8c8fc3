"""Training: features, the logistic heads, cross-validation, the stacker, the flag threshold and the label rules.

Deterministic for a given seed and data. Cross-validation (leave-one-theme-out when the records come from
three or more sources) gives the out-of-fold scores from which the stacker, the flag threshold and each
label's rule are chosen, and the cross-validated metrics stored with the model.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from classifier.features import Doc, FeatureSpace, analyse
from classifier.metrics import flag_metrics, multilabel_metrics, precision_at
from classifier.model import (
    LABELS,
    MAIN_HEADS,
    MODES,
    Config,
    TrainedModel,
    decide,
    log_sigmoid,
    logit,
    rule_hits,
    sigmoid,
    stack,
)
from classifier.records import LabelledReport, as_labelled, data_hash
from classifier.taxonomy import SERVICES, TARGET_GROUPS
from classifier.version import code_hash, model_version

MAX_FOLDS = 10  # more sources than this are grouped into this many folds


def train(
    records: Sequence[LabelledReport | Mapping[str, Any]], *, seed: int = 0, config: Config | None = None,
    cross_validate: bool = True, cv_scheme: str = "auto", source_weights: Mapping[str, float] | None = None,
    fit_labels: bool = True,
) -> TrainedModel:
    """Fit on labelled reports (corpus records or dicts); deterministic for a given seed and data.

    Cross-validation (leave-one-theme-out when the records come from three or more sources) picks the
    stacker, the flag threshold and the label rules; without it those keep neutral defaults.
    `source_weights` weighs the records of a source (e.g. {"review": 5.0} for adviser decisions) against
    the others' weight of 1. `fit_labels=False` leaves target groups and services untrained (a model
    for measuring the flag only, several times faster).
    """
    config = config or Config()
    labelled = sorted(as_labelled(records), key=lambda r: r.id)
    if len(labelled) < 10:
        raise ValueError("need at least 10 labelled reports to train")
    docs = [analyse(r.text) for r in labelled]
    y_main, y_labels = label_matrices(labelled)
    weight = record_weights(labelled, source_weights)
    if not fit_labels:
        y_labels = np.zeros_like(y_labels)
    if y_main[:, 2].min() == y_main[:, 2].max():
        raise ValueError("training data needs both flagged and unflagged reports")
    rules = rule_hits(docs)
    folds = make_folds(labelled, seed, cv_scheme)

    metrics: dict[str, Any] = {"n_training": len(labelled), "code_hash": code_hash(), "seed": seed, "cv": {}}
    stacker = np.array([0.0, 1.0, 1.0])
    label_thresholds = np.full(len(LABELS), 0.5)
    label_modes = ["either"] * len(LABELS)
    threshold = 0.5
    if cross_validate:
        oof_main, oof_labels = out_of_fold(docs, y_main, y_labels, folds, config, seed, weight)
        stacker = fit_stacker(oof_main, y_main[:, 2], seed)
        shift = logit(config.prevalence) - logit(float(y_main[:, 2].mean()))
        oof_score = sigmoid(stack(stacker, oof_main) + shift)
        threshold = choose_threshold(oof_score, y_main[:, 2], config.prevalence, config.target_precision)
        label_thresholds, label_modes = choose_label_rules(oof_labels, rules, y_labels, config)
        decided = decide(oof_labels, rules, label_thresholds, label_modes)
        metrics["cv"] = {
            "scheme": folds.scheme,
            "n_folds": folds.n_folds,
            "samhandling_barn_unge": flag_metrics(y_main[:, 2], oof_score, threshold, config.prevalence),
            "target_groups": multilabel_metrics(y_labels[:, : len(TARGET_GROUPS)], decided[:, : len(TARGET_GROUPS)],
                                                TARGET_GROUPS),
            "services": multilabel_metrics(y_labels[:, len(TARGET_GROUPS):], decided[:, len(TARGET_GROUPS):],
                                           SERVICES),
        }

    features = FeatureSpace(block_weights=config.block_weights, min_df=config.min_df).fit(docs)
    matrix = summed(features.transform(docs))
    weights, intercepts = fit_heads(matrix, y_main[:, :2], y_labels, config, seed, features.offsets[1], weight)
    digest = data_hash(labelled)
    created = dt.datetime.now(dt.UTC)
    metrics["threshold_target"] = (
        f"precision >= {config.target_precision:.2f} at {config.prevalence:.0%} prevalence, highest recall "
        f"({folds.scheme} cross-validation)"
    )
    return TrainedModel(
        features=features, weights=weights.astype(np.float32), intercepts=intercepts, stacker=stacker,
        label_thresholds=label_thresholds, label_modes=label_modes, threshold=float(threshold),
        train_prevalence=float(y_main[:, 2].mean()), config=config,
        version=model_version(digest, seed, asdict(config), created), training_data_hash=digest, metrics=metrics,
        created_at=created.isoformat(timespec="seconds"),
    )


def label_matrices(records: Sequence[LabelledReport]) -> tuple[np.ndarray, np.ndarray]:
    """0/1 matrices of the three main labels and of every target group and service."""
    y_main = np.array([[r.labels.samhandling, r.labels.barn_unge, r.labels.samhandling_barn_unge]
                       for r in records], dtype=np.int64)
    index = {label: j for j, label in enumerate(LABELS)}
    y_labels = np.zeros((len(records), len(LABELS)), dtype=np.int64)
    for i, r in enumerate(records):
        for g in r.labels.target_groups:
            y_labels[i, index[f"group:{g}"]] = 1
        for s in r.labels.services:
            y_labels[i, index[f"service:{s}"]] = 1
    return y_main, y_labels


@dataclass(frozen=True)
class Folds:
    """Train/test index pairs and how they were made."""

    splits: list[tuple[np.ndarray, np.ndarray]]
    scheme: str

    @property
    def n_folds(self) -> int:
        """Number of folds."""
        return len(self.splits)


def make_folds(records: Sequence[LabelledReport], seed: int, scheme: str = "auto") -> Folds:
    """Leave-one-theme-out folds when at least three sources exist, else stratified 5-fold."""
    sources = np.array([r.source or "unknown" for r in records])
    y = np.array([r.labels.samhandling_barn_unge for r in records])
    if scheme not in ("auto", "theme", "random"):
        raise ValueError(f"unknown cross-validation scheme {scheme!r}")
    from sklearn.model_selection import GroupKFold, LeaveOneGroupOut, StratifiedKFold  # training only

    if scheme in ("auto", "theme") and len(set(sources)) > MAX_FOLDS:
        # Many sources (a real-derived track has one per public case): sources kept whole, ten folds.
        splits = list(GroupKFold(n_splits=MAX_FOLDS).split(sources, y, groups=sources))
        return Folds(splits, f"grouped {MAX_FOLDS}-fold by source")
    if scheme in ("auto", "theme") and len(set(sources)) >= 3:
        splits = list(LeaveOneGroupOut().split(sources, y, groups=sources))
        return Folds(splits, "leave-one-theme-out")
    if scheme == "theme":
        raise ValueError("leave-one-theme-out needs records from at least three sources")
    n_splits = int(min(5, max(2, min(y.sum(), len(y) - y.sum()))))
    splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return Folds(list(splitter.split(sources, y)), f"stratified {n_splits}-fold")


def record_weights(records: Sequence[LabelledReport], source_weights: Mapping[str, float] | None) -> np.ndarray | None:
    """Per record, its source's weight (1 for sources not named); None when every weight is 1."""
    if not source_weights:
        return None
    if any(w <= 0 for w in source_weights.values()):
        raise ValueError("source weights must be positive")
    weight = np.array([float(source_weights.get(r.source, 1.0)) for r in records])
    return None if np.all(weight == 1.0) else weight


def fit_heads(
    matrix: sp.csr_matrix, y_main: np.ndarray, y_labels: np.ndarray, config: Config, seed: int, word_offset: int,
    sample_weight: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One logistic regression per main head and per label; constant heads for labels never seen."""
    from sklearn.linear_model import LogisticRegression  # training only, see classifier.version.sklearn_version

    n_heads = y_main.shape[1] + y_labels.shape[1]
    weights = np.zeros((matrix.shape[1], n_heads))
    intercepts = np.zeros(n_heads)
    label_start = 0 if config.label_char_ngrams else word_offset
    label_matrix = matrix[:, label_start:]
    columns = [y_main[:, k] for k in range(y_main.shape[1])] + [y_labels[:, k] for k in range(y_labels.shape[1])]
    for k, y in enumerate(columns):
        positives = int(y.sum())
        if positives == 0 or positives == len(y):
            intercepts[k] = -20.0 if positives == 0 else 20.0
            continue
        main = k < y_main.shape[1]
        model = LogisticRegression(C=config.c_main if main else config.c_label, solver="liblinear",
                                   class_weight="balanced", intercept_scaling=10.0, random_state=seed, max_iter=1000)
        model.fit(matrix if main else label_matrix, y, sample_weight=sample_weight)
        weights[0 if main else label_start:, k] = model.coef_[0]
        intercepts[k] = model.intercept_[0]
    return weights, intercepts


def out_of_fold(
    docs: Sequence[Doc], y_main: np.ndarray, y_labels: np.ndarray, folds: Folds, config: Config, seed: int,
    sample_weight: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold log-odds of the main heads and probabilities of the labels (features refit per fold)."""
    y_main = y_main[:, : len(MAIN_HEADS)]
    oof_main = np.zeros(y_main.shape, dtype=np.float64)
    oof_labels = np.zeros(y_labels.shape, dtype=np.float64)
    for train_idx, test_idx in folds.splits:
        features = FeatureSpace(block_weights=config.block_weights, min_df=config.min_df)
        features.fit([docs[i] for i in train_idx])
        x_train = summed(features.transform([docs[i] for i in train_idx]))
        x_test = features.transform([docs[i] for i in test_idx])
        fold_weight = None if sample_weight is None else sample_weight[train_idx]
        weights, intercepts = fit_heads(x_train, y_main[train_idx], y_labels[train_idx], config, seed,
                                        features.offsets[1], fold_weight)
        heads = np.asarray(x_test @ weights) + intercepts
        oof_main[test_idx] = heads[:, : len(MAIN_HEADS)]
        oof_labels[test_idx] = sigmoid(heads[:, len(MAIN_HEADS):])
    return oof_main, oof_labels


def fit_stacker(oof_main: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    """Platt-style logistic regression on the heads' out-of-fold log-probabilities: calibrates and combines.

    Log-probabilities rather than log-odds make the combination a soft AND (a weighted product of
    P(samhandling) and P(barn_unge)); in cross-validation this beat a joint head clearly.
    """
    from sklearn.linear_model import LogisticRegression  # training only, see classifier.version.sklearn_version

    model = LogisticRegression(C=1.0, solver="lbfgs", random_state=seed, max_iter=1000)
    model.fit(log_sigmoid(oof_main), y)
    return np.concatenate([model.intercept_, model.coef_[0]])


def choose_threshold(scores: np.ndarray, y: np.ndarray, prevalence: float, target: float) -> float:
    """Lowest threshold whose precision at `prevalence` reaches target; else the most precise one."""
    y = np.asarray(y).astype(bool)
    candidates = np.unique(scores)[::-1]
    pos, neg = max(y.sum(), 1), max((~y).sum(), 1)
    tpr = np.array([(scores[y] >= t).sum() / pos for t in candidates])
    fpr = np.array([(scores[~y] >= t).sum() / neg for t in candidates])
    precision = precision_at(tpr, fpr, prevalence)
    ok = np.flatnonzero((precision >= target) & (tpr > 0))
    if len(ok):
        # Half-way to the next lower score keeps the threshold away from the last accepted example.
        k = ok[-1]
        lower = candidates[k + 1] if k + 1 < len(candidates) else 0.0
        return float((candidates[k] + lower) / 2)
    return float(candidates[int(np.argmax(np.where(tpr > 0, precision, -1)))])


def choose_label_rules(
    oof: np.ndarray, rules: np.ndarray, y: np.ndarray, config: Config
) -> tuple[np.ndarray, list[str]]:
    """Per label, the probability threshold and mode (model, rule, either) with the best out-of-fold F1."""
    thresholds = np.full(y.shape[1], 0.5)
    modes = ["either"] * y.shape[1]
    grid = np.round(np.arange(0.2, 0.81, 0.05), 2)
    for k in range(y.shape[1]):
        truth = y[:, k].astype(bool)
        if truth.sum() < config.min_positives_for_tuning:
            continue
        best = (-1.0, 0.5, "either")
        for mode in MODES:
            for t in grid if mode != "rule" else [0.5]:
                model_says = oof[:, k] >= t
                decided = {"model": model_says, "rule": rules[:, k], "either": model_says | rules[:, k]}[mode]
                score = _f1(truth, decided)
                if score > best[0] + 1e-9:
                    best = (score, float(t), mode)
        thresholds[k], modes[k] = best[1], best[2]
    return thresholds, modes


def _f1(truth: np.ndarray, decided: np.ndarray) -> float:
    tp = float((truth & decided).sum())
    denominator = float(truth.sum() + decided.sum())
    return 2 * tp / denominator if denominator else 1.0


def summed(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """The matrix with duplicate entries summed, in place: the solver wants one entry per column."""
    # Summing the duplicates leaves every dot product as it was.
    matrix.sum_duplicates()
    return matrix
