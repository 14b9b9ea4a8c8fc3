"""Training and prediction: two logistic heads (samhandling, barn_unge) stacked into one calibrated score.

The flag score is P(samhandling_barn_unge) corrected to the production prevalence. Target groups and
services are per-label logistic models, each combined with rule/gazetteer hits when cross-validation
says that helps.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from classifier.features import Doc, FeatureSpace, analyse
from classifier.linear import Evaluated, LinearHeads
from classifier.records import LabelledReport, ReportText, as_labelled, data_hash
from classifier.taxonomy import SERVICES, TARGET_GROUPS
from classifier.text import NEG_PREFIX

MAIN_HEADS = ("samhandling", "barn_unge")
LABELS = tuple(f"group:{g}" for g in TARGET_GROUPS) + tuple(f"service:{s}" for s in SERVICES)
MODES = ("model", "rule", "either")
FORMAT_VERSION = 1
MAX_FOLDS = 10  # more sources than this are grouped into this many folds


@dataclass(frozen=True)
class Config:
    """Hyper-parameters; the defaults were chosen by leave-one-theme-out cross-validation on the corpus."""

    c_main: float = 10.0
    c_label: float = 10.0
    block_weights: tuple[float, float, float] = (1.0, 1.0, 0.6)
    min_df: int = 2
    prevalence: float = 0.05  # share of all reports that are samhandling_barn_unge in production
    target_precision: float = 0.80  # at `prevalence`; the flag threshold is the lowest that reaches it
    min_positives_for_tuning: int = 10  # labels rarer than this keep threshold 0.5 and mode "either"
    explain_top: int = 8
    label_char_ngrams: bool = False  # label heads on words and meta tokens only: six times faster, as good


@dataclass(frozen=True, slots=True)
class Explanation:
    """One readable term and how much it moved the score (log-odds; positive means towards flagging)."""

    term: str
    weight: float

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"term": self.term, "weight": self.weight}


@dataclass(frozen=True, slots=True)
class Prediction:
    """The classifier's answer for one report."""

    id: str
    score: float
    flagged: bool
    target_groups: list[str]
    services: list[str]
    explanation: list[Explanation]
    model_version: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON line written by `classify`."""
        return {
            "id": self.id, "score": self.score, "flagged": self.flagged, "target_groups": list(self.target_groups),
            "services": list(self.services), "explanation": [e.to_dict() for e in self.explanation],
            "model_version": self.model_version,
        }


@dataclass
class TrainedModel:
    """A fitted model: features, weights, thresholds and the metadata stored with it."""

    features: FeatureSpace
    weights: np.ndarray  # (n_features, n_heads): the two main heads, then one column per label
    intercepts: np.ndarray  # (n_heads,)
    stacker: np.ndarray  # (3,): intercept and coefficients over log P(samhandling), log P(barn_unge)
    label_thresholds: np.ndarray  # (n_labels,) probability thresholds
    label_modes: list[str]  # per label: "model", "rule" or "either"
    threshold: float
    train_prevalence: float
    config: Config
    version: str
    training_data_hash: str
    metrics: dict[str, Any]
    created_at: str
    sklearn_version: str = field(default_factory=lambda: sklearn_version())
    _inverse: list[str] | None = field(default=None, repr=False)
    _heads: LinearHeads | None = field(default=None, repr=False, compare=False)

    @property
    def prior_shift(self) -> float:
        """Log-odds added to move the calibrated score from the training to the production prevalence."""
        return _logit(self.config.prevalence) - _logit(self.train_prevalence)

    def scores(self, docs: Sequence[Doc]) -> tuple[np.ndarray, np.ndarray, Evaluated]:
        """Flag scores, label probabilities, and the heads' log-odds with what explanations need."""
        evaluated = self.heads().evaluate(docs)
        flag = _sigmoid(stack(self.stacker, evaluated.main) + self.prior_shift)
        return flag, _sigmoid(evaluated.labels), evaluated

    def heads(self) -> LinearHeads:
        """The heads, evaluated per distinct word (built on first use; the model's numbers never change)."""
        if self._heads is None:
            heads = len(MAIN_HEADS)
            # Label heads trained without n-grams have zeros there; a model that has any uses them.
            chars = self.config.label_char_ngrams or bool(np.any(self.weights[: self.features.offsets[1], heads:]))
            self._heads = LinearHeads(self.features, self.weights, self.intercepts, heads, chars)
        return self._heads

    def predict(
        self, reports: Sequence[ReportText], threshold: float | None = None, *, explain: bool = True
    ) -> list[Prediction]:
        """Score, flag, label and explain a batch of reports; threshold overrides the stored one.

        explain=False leaves the explanations empty and saves about a quarter of the time (bulk re-scoring).
        """
        cut = self.threshold if threshold is None else float(threshold)
        docs = [analyse(r) for r in reports]
        if not docs:
            return []
        score, label_p, evaluated = self.scores(docs)
        decided = self.decide_labels(label_p, docs)
        explanations = self.explain(docs, evaluated) if explain else [[] for _ in docs]
        names = [(TARGET_GROUPS[j], None) if j < len(TARGET_GROUPS) else (None, SERVICES[j - len(TARGET_GROUPS)])
                 for j in range(len(LABELS))]
        chosen: list[list[int]] = [[] for _ in docs]
        for i, j in zip(*(a.tolist() for a in np.nonzero(decided)), strict=True):
            chosen[i].append(j)
        scores = score.tolist()
        out = []
        for i, report in enumerate(reports):
            labels = [names[j] for j in chosen[i]]
            out.append(Prediction(
                id=report.id,
                score=round(scores[i], 6),
                flagged=scores[i] >= cut,
                target_groups=[g for g, _ in labels if g],
                services=[s for _, s in labels if s],
                explanation=explanations[i],
                model_version=self.version,
            ))
        return out

    def decide_labels(self, label_p: np.ndarray, docs: Sequence[Doc]) -> np.ndarray:
        """Boolean (n, n_labels) label decisions from model probabilities and rule hits."""
        return _decide(label_p, rule_hits(docs), self.label_thresholds, self.label_modes)

    def explain(self, docs: Sequence[Doc], evaluated: Evaluated) -> list[list[Explanation]]:
        """Per report, the words, word pairs and meta tokens that moved the flag score most (log-odds)."""
        slopes = self.attribution_slopes(evaluated.main)
        # A word's share is its n-grams' share: the character block's factor times their summed weights.
        word_counts = np.fromiter(map(len, evaluated.words), dtype=np.int64, count=len(docs))
        word_values = (evaluated.word_sums * np.repeat(slopes * evaluated.char_scales[:, None], word_counts, axis=0)
                       ).sum(axis=1)
        starts = evaluated.text_starts
        rows = np.repeat(np.arange(len(docs)), np.diff(starts))
        text_values = (evaluated.text_main * slopes[rows]).sum(axis=1)
        inverse = self.inverse_vocabulary()
        word_off, meta_off = self.features.offsets[1:3]
        top = self.config.explain_top
        out = []
        first_word = 0
        for i, doc in enumerate(docs):
            terms: dict[str, float] = {}
            words = evaluated.words[i]
            values = word_values[first_word: first_word + len(words)]
            first_word += len(words)
            for k in _largest(values, top):
                label = doc.surfaces[doc.words.index(words[k])]
                terms[label] = terms.get(label, 0.0) + float(values[k])
            start, end = starts[i], starts[i + 1]
            values = text_values[start:end]
            for k in _largest(values, top):
                col = word_off + int(evaluated.text_columns[start + k])
                label = _readable_meta(inverse[col]) if col >= meta_off else _feature_label(doc, inverse[col])
                terms[label] = terms.get(label, 0.0) + float(values[k])
            ranked = sorted(terms.items(), key=lambda kv: -abs(kv[1]))[:top]
            out.append([Explanation(term, round(value, 3)) for term, value in ranked if value])
        return out

    def attribution_slopes(self, main: np.ndarray) -> np.ndarray:
        """Per report and head, the secant slope from the intercept-only head to the report's head log-odds.

        The flag log-odds is a0 + a1 log P(samhandling) + a2 log P(barn_unge). Splitting each head's change
        from its intercept over its features in proportion to their share gives contributions that add up
        to the score's change, also when a head is saturated (where the gradient would say nothing).
        """
        base = self.intercepts[: len(MAIN_HEADS)]
        delta = main - base
        change = self.stacker[1:] * (_log_sigmoid(main) - _log_sigmoid(base))
        tangent = self.stacker[1:] * (1.0 - _sigmoid(main))
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(np.abs(delta) > 1e-6, change / delta, tangent)

    def inverse_vocabulary(self) -> list[str]:
        """Feature name of every column."""
        if self._inverse is None:
            names = [""] * self.features.n_features
            offsets = self.features.offsets
            for offset, vocab in zip(offsets[:3], (self.features.char_vocab, self.features.word_vocab,
                                                   self.features.meta_vocab), strict=True):
                for term, j in vocab.items():
                    names[offset + j] = term
            self._inverse = names
        return self._inverse


# ---------------------------------------------------------------------------------------------- training


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
        shift = _logit(config.prevalence) - _logit(float(y_main[:, 2].mean()))
        oof_score = _sigmoid(stack(stacker, oof_main) + shift)
        threshold = choose_threshold(oof_score, y_main[:, 2], config.prevalence, config.target_precision)
        label_thresholds, label_modes = choose_label_rules(oof_labels, rules, y_labels, config)
        decided = _decide(oof_labels, rules, label_thresholds, label_modes)
        from classifier.evaluate import flag_metrics, multilabel_metrics  # evaluate imports model

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
    matrix = _summed(features.transform(docs))
    weights, intercepts = fit_heads(matrix, y_main[:, :2], y_labels, config, seed, features.offsets[1], weight)
    digest = data_hash(labelled)
    created = dt.datetime.now(dt.UTC)
    fingerprint = hashlib.sha256(
        json.dumps([digest, seed, asdict(config), sklearn_version(), code_hash()], sort_keys=True).encode()
    ).hexdigest()
    metrics["threshold_target"] = (
        f"precision >= {config.target_precision:.2f} at {config.prevalence:.0%} prevalence, highest recall "
        f"({folds.scheme} cross-validation)"
    )
    return TrainedModel(
        features=features, weights=weights.astype(np.float32), intercepts=intercepts, stacker=stacker,
        label_thresholds=label_thresholds, label_modes=label_modes, threshold=float(threshold),
        train_prevalence=float(y_main[:, 2].mean()), config=config,
        version=f"{created:%Y.%m.%d}-{fingerprint[:8]}", training_data_hash=digest, metrics=metrics,
        created_at=created.isoformat(timespec="seconds"),
    )


def sklearn_version() -> str:
    """The installed scikit-learn's version, read from its metadata without importing it.

    Only training needs scikit-learn; prediction is numpy and scipy.sparse. Importing it (and the parts of
    scipy it pulls in) would cost every server process about 60 MB, so it is imported where models are fit.
    """
    return importlib.metadata.version("scikit-learn")


def code_hash() -> str:
    """SHA-256 of the package's Python sources: a model version changes when the code that made it does."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).resolve().parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


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


def rule_hits(docs: Sequence[Doc]) -> np.ndarray:
    """Boolean (n, n_labels): the gazetteer or the age/word rules point at the label."""
    index = {label: j for j, label in enumerate(LABELS)}
    out = np.zeros((len(docs), len(LABELS)), dtype=bool)
    for i, doc in enumerate(docs):
        for token in doc.meta:
            kind, _, value = token.partition(":")
            if kind in ("svc", "unit"):
                j = index.get(f"service:{value}")
            elif kind in ("age", "grade", "word"):
                j = index.get(f"group:{value}")
            else:
                continue
            if j is not None:
                out[i, j] = True
    return out


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
    from sklearn.linear_model import LogisticRegression  # training only, see sklearn_version

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
        x_train = _summed(features.transform([docs[i] for i in train_idx]))
        x_test = features.transform([docs[i] for i in test_idx])
        fold_weight = None if sample_weight is None else sample_weight[train_idx]
        weights, intercepts = fit_heads(x_train, y_main[train_idx], y_labels[train_idx], config, seed,
                                        features.offsets[1], fold_weight)
        heads = np.asarray(x_test @ weights) + intercepts
        oof_main[test_idx] = heads[:, : len(MAIN_HEADS)]
        oof_labels[test_idx] = _sigmoid(heads[:, len(MAIN_HEADS):])
    return oof_main, oof_labels


def fit_stacker(oof_main: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    """Platt-style logistic regression on the heads' out-of-fold log-probabilities: calibrates and combines.

    Log-probabilities rather than log-odds make the combination a soft AND (a weighted product of
    P(samhandling) and P(barn_unge)); in cross-validation this beat a joint head clearly.
    """
    from sklearn.linear_model import LogisticRegression  # training only, see sklearn_version

    model = LogisticRegression(C=1.0, solver="lbfgs", random_state=seed, max_iter=1000)
    model.fit(_log_sigmoid(oof_main), y)
    return np.concatenate([model.intercept_, model.coef_[0]])


def stack(stacker: np.ndarray, main: np.ndarray) -> np.ndarray:
    """Calibrated log-odds (training prevalence) of the flag from the main heads' log-odds."""
    return stacker[0] + _log_sigmoid(main) @ stacker[1:]


def precision_at(tpr: np.ndarray, fpr: np.ndarray, prevalence: float) -> np.ndarray:
    """Precision expected when positives make up `prevalence` of the reports, from TPR and FPR."""
    tp = prevalence * tpr
    fp = (1 - prevalence) * fpr
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(tp + fp > 0, tp / (tp + fp), 1.0)


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


def _decide(p: np.ndarray, rules: np.ndarray, thresholds: np.ndarray, modes: Sequence[str]) -> np.ndarray:
    by_model = p >= thresholds
    codes = np.array([MODES.index(m) for m in modes])
    return np.where(codes == 0, by_model, np.where(codes == 1, rules, by_model | rules))


def _f1(truth: np.ndarray, decided: np.ndarray) -> float:
    tp = float((truth & decided).sum())
    denominator = float(truth.sum() + decided.sum())
    return 2 * tp / denominator if denominator else 1.0


def _summed(matrix: sp.csr_matrix) -> sp.csr_matrix:
    # The solver wants one entry per column; summing the duplicates leaves every dot product as it was.
    matrix.sum_duplicates()
    return matrix


def _sigmoid(z: np.ndarray | float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))


def _log_sigmoid(z: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -z)


def _logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


def _largest(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k values largest in magnitude (all of them when there are fewer)."""
    if len(values) <= k:
        return np.arange(len(values))
    return np.argpartition(-np.abs(values), k)[:k]


def _feature_label(doc: Doc, feature: str) -> str:
    # Show a word feature as the reporter wrote it: "ikke fått", not the stems "ikke neg_få".
    first, _, second = feature.partition(" ")
    if not second:
        k = doc.unigrams.index(feature) if feature in doc.unigrams else -1
        if k < 0:
            return feature
        return _negated(doc, k, doc.surfaces[k]) if feature.startswith(NEG_PREFIX) else doc.surfaces[k]
    unigrams, k = doc.unigrams, -1
    while first in unigrams[k + 1:]:
        k = unigrams.index(first, k + 1)
        if k + 1 < len(unigrams) and unigrams[k + 1] == second:
            return f"{doc.surfaces[k]} {doc.surfaces[k + 1]}"
    return feature


def _negated(doc: Doc, i: int, surface: str) -> str:
    # Show the negation cue with the word it negates: "ingen tilbakemelding", "ikke ... beskjed".
    for back in range(1, 4):
        if i - back < 0:
            break
        if doc.unigrams[i - back] in ("ikke", "ingen", "aldri", "uten", "verken", "ingenting", "intet"):
            gap = " " if back == 1 else " … "
            return doc.surfaces[i - back] + gap + surface
    return surface


_META_LABELS = {
    "cat": "kategori", "catgroup": "kategorigruppe", "agency": "etat", "unit": "meldende tjeneste",
    "svc": "nevner", "svctitle": "tittel nevner", "nsvc": "tjenester nevnt", "nother": "andre tjenester nevnt",
    "age": "alder", "grade": "trinn", "word": "ord om", "agegroup": "aldersgruppe", "ctx": "sammenheng",
}


def _readable_meta(token: str) -> str:
    kind, _, value = token.partition(":")
    if kind == "catgroup":
        value = "Kommunikasjon og samhandling" if value == "communication" else "annen"
    elif kind == "agegroup":
        value = "barn/unge 0–25" if value == "child_or_youth" else "voksen"
    return f"[{_META_LABELS.get(kind, kind)}: {value}]"
