"""Prediction: two logistic heads (samhandling, barn_unge) stacked into one calibrated score, and the labels.

The flag score is P(samhandling_barn_unge) corrected to the production prevalence. Target groups and
services are per-label logistic models, each combined with rule/gazetteer hits as training chose
(`classifier.training`); `classifier.explanation` words what moved a score.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from classifier.explanation import Explanation, explain
from classifier.features import Doc, FeatureSpace, analyse
from classifier.linear import Evaluated, LinearHeads
from classifier.records import ReportText
from classifier.taxonomy import SERVICES, TARGET_GROUPS
from classifier.version import sklearn_version

MAIN_HEADS = ("samhandling", "barn_unge")
LABELS = tuple(f"group:{g}" for g in TARGET_GROUPS) + tuple(f"service:{s}" for s in SERVICES)
MODES = ("model", "rule", "either")


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
        return logit(self.config.prevalence) - logit(self.train_prevalence)

    def scores(self, docs: Sequence[Doc]) -> tuple[np.ndarray, np.ndarray, Evaluated]:
        """Flag scores, label probabilities, and the heads' log-odds with what explanations need."""
        evaluated = self.heads().evaluate(docs)
        flag = sigmoid(stack(self.stacker, evaluated.main) + self.prior_shift)
        return flag, sigmoid(evaluated.labels), evaluated

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
        return decide(label_p, rule_hits(docs), self.label_thresholds, self.label_modes)

    def explain(self, docs: Sequence[Doc], evaluated: Evaluated) -> list[list[Explanation]]:
        """Per report, the words, word pairs and meta tokens that moved the flag score most (log-odds)."""
        return explain(docs, evaluated, self.attribution_slopes(evaluated.main), self.inverse_vocabulary(),
                       self.features.offsets, self.config.explain_top)

    def attribution_slopes(self, main: np.ndarray) -> np.ndarray:
        """Per report and head, the secant slope from the intercept-only head to the report's head log-odds.

        The flag log-odds is a0 + a1 log P(samhandling) + a2 log P(barn_unge). Splitting each head's change
        from its intercept over its features in proportion to their share gives contributions that add up
        to the score's change, also when a head is saturated (where the gradient would say nothing).
        """
        base = self.intercepts[: len(MAIN_HEADS)]
        delta = main - base
        change = self.stacker[1:] * (log_sigmoid(main) - log_sigmoid(base))
        tangent = self.stacker[1:] * (1.0 - sigmoid(main))
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


def decide(p: np.ndarray, rules: np.ndarray, thresholds: np.ndarray, modes: Sequence[str]) -> np.ndarray:
    """Boolean label decisions: per label, the model above its threshold, the rule hit, or either."""
    by_model = p >= thresholds
    codes = np.array([MODES.index(m) for m in modes])
    return np.where(codes == 0, by_model, np.where(codes == 1, rules, by_model | rules))


def stack(stacker: np.ndarray, main: np.ndarray) -> np.ndarray:
    """Calibrated log-odds (training prevalence) of the flag from the main heads' log-odds."""
    log_odds: np.ndarray = stacker[0] + log_sigmoid(main) @ stacker[1:]
    return log_odds


def sigmoid(z: np.ndarray | float) -> np.ndarray:
    """The logistic function, clipped so that it never overflows."""
    p: np.ndarray = 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))
    return p


def log_sigmoid(z: np.ndarray) -> np.ndarray:
    """log(sigmoid(z)), computed without underflow."""
    log_p: np.ndarray = -np.logaddexp(0.0, -z)
    return log_p


def logit(p: float) -> float:
    """Log-odds of a probability."""
    return float(np.log(p / (1 - p)))
