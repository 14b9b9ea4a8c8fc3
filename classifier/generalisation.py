"""How the model does on text it was not written for: the hand-written corpus against the real-derived track.

The real-derived track (`corpus/real_derived/*.jsonl`) holds reports written from public cases
(supervision findings, ombudsman statements, news), each with the source it came from. Three figures:
train on the hand-written corpus and measure on the track (forward), the reverse, and leave-source-out
cross-validation over the track (the hand-written corpus always in training, no source on both sides).
Every flag figure carries a bootstrap 95 % interval. A simulation of adviser feedback retrains with a
share of the track as "adviser decisions" and measures on the rest.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from classifier.features import FeatureSpace, analyse
from classifier.metrics import flag_metrics, multilabel_metrics, precision_at
from classifier.model import MAIN_HEADS, TrainedModel, sigmoid, stack
from classifier.records import LabelledReport, load_corpus
from classifier.taxonomy import SERVICES, TARGET_GROUPS
from classifier.training import fit_heads, label_matrices, record_weights, summed, train

RECALL = 0.85
PREVALENCE = 0.05
BOOTSTRAP = 1000
FEEDBACK_SOURCE = "review"  # the source name app.registry.feedback gives adviser decisions


def load_track(paths: Sequence[Path]) -> list[LabelledReport]:
    """Real-derived records, each with its public source (source_id, else source_url) as `source`."""
    records = load_corpus(paths)
    return [replace(r, source=str(r.extra.get("source_id") or r.extra.get("source_url") or r.source))
            for r in records]


def precision_at_recall(y: np.ndarray, scores: np.ndarray, recall: float = RECALL,
                        prevalence: float = PREVALENCE) -> float:
    """Precision at `prevalence` at the highest threshold whose recall reaches `recall` (threshold-free)."""
    truth = np.asarray(y).astype(bool)
    if truth.all() or not truth.any():
        return float("nan")
    positives = np.sort(scores[truth])[::-1]
    # The highest threshold that keeps ceil(recall * positives) of them.
    cut = positives[int(np.ceil(recall * len(positives))) - 1]
    tpr = float((scores[truth] >= cut).mean())
    fpr = float((scores[~truth] >= cut).mean())
    return float(precision_at(np.array(tpr), np.array(fpr), prevalence))


def flag_figures(y: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    """F1 at the model's threshold, ROC AUC, and precision at 5 % prevalence at 85 % recall."""
    from sklearn.metrics import roc_auc_score  # measuring only

    truth = np.asarray(y).astype(bool)
    flagged = scores >= threshold
    tp = int((truth & flagged).sum())
    wrong = int((truth != flagged).sum())
    both = 0 < truth.sum() < len(truth)
    return {
        "f1": 2 * tp / (2 * tp + wrong) if tp + wrong else float("nan"),
        "roc_auc": float(roc_auc_score(truth, scores)) if both else float("nan"),
        "precision_at_5pct_recall_85": precision_at_recall(truth, scores),
    }


def with_intervals(y: np.ndarray, scores: np.ndarray, threshold: float, seed: int = 0,
                   rounds: int = BOOTSTRAP) -> dict[str, Any]:
    """flag_figures with a percentile bootstrap 95 % interval for each (reports resampled with replacement)."""
    y = np.asarray(y).astype(bool)
    scores = np.asarray(scores, dtype=float)
    point = flag_figures(y, scores, threshold)
    rng = np.random.default_rng(seed)
    samples: dict[str, list[float]] = {name: [] for name in point}
    for _ in range(rounds):
        pick = rng.integers(0, len(y), len(y))
        if y[pick].all() or not y[pick].any():
            continue
        for name, value in flag_figures(y[pick], scores[pick], threshold).items():
            samples[name].append(value)
    out: dict[str, Any] = {"n": len(y), "positives": int(y.sum()), "threshold": round(threshold, 4)}
    for name, value in point.items():
        values = np.array([v for v in samples[name] if not np.isnan(v)])
        low, high = np.percentile(values, [2.5, 97.5]) if len(values) else (float("nan"), float("nan"))
        out[name] = {"value": round(value, 3), "low": round(float(low), 3), "high": round(float(high), 3)}
    return out


def measure(model: TrainedModel, records: Sequence[LabelledReport], seed: int = 0) -> dict[str, Any]:
    """The flag figures with intervals, and target groups and services per code, of a model on records."""
    docs = [analyse(r.text) for r in records]
    scores, label_p, _ = model.scores(docs)
    y_main, y_labels = label_matrices(records)
    decided = model.decide_labels(label_p, docs)
    groups = len(TARGET_GROUPS)
    return {
        "flag": with_intervals(y_main[:, 2], scores, model.threshold, seed),
        "at_threshold": flag_metrics(y_main[:, 2], scores, model.threshold, model.config.prevalence),
        "target_groups": multilabel_metrics(y_labels[:, :groups], decided[:, :groups], TARGET_GROUPS),
        "services": multilabel_metrics(y_labels[:, groups:], decided[:, groups:], SERVICES),
        "scores": scores,
    }


def source_folds(records: Sequence[LabelledReport], k: int = 10) -> list[np.ndarray]:
    """Indices of `k` folds (fewer when there are fewer sources) that keep each source whole."""
    from sklearn.model_selection import GroupKFold  # measuring only

    sources = np.array([r.source for r in records])
    n = min(k, len(set(sources)))
    return [test for _, test in GroupKFold(n_splits=n).split(sources, groups=sources)]


def leave_source_out(hand: Sequence[LabelledReport], track: Sequence[LabelledReport], calibrated: TrainedModel,
                     seed: int = 0, k: int = 10) -> dict[str, Any]:
    """Out-of-fold flag scores over the track, training on the hand-written corpus plus the track's other sources.

    Each fold fits the two main heads only; the stacker and the threshold are those of `calibrated` (the
    forward model, which saw no real-derived report), so nothing about a fold's reports leaks into its scores.
    """
    scores = np.zeros(len(track))
    for test in source_folds(track, k):
        held = set(test.tolist())
        training = [*hand, *(r for i, r in enumerate(track) if i not in held)]
        scores[test] = flag_scores(heads_only(training, calibrated, seed), [track[i] for i in test], calibrated)
    y = np.array([r.labels.samhandling_barn_unge for r in track])
    return {"folds": len(source_folds(track, k)), "sources": len({r.source for r in track}),
            "flag": with_intervals(y, scores, calibrated.threshold, seed)}


def heads_only(records: Sequence[LabelledReport], like: TrainedModel, seed: int,
               source_weights: dict[str, float] | None = None) -> TrainedModel:
    """A copy of `like` whose main heads (and features) are refitted on records; labels and calibration kept."""
    ordered = sorted(records, key=lambda r: r.id)
    docs = [analyse(r.text) for r in ordered]
    y_main, y_labels = label_matrices(ordered)
    features = FeatureSpace(block_weights=like.config.block_weights, min_df=like.config.min_df).fit(docs)
    weights, intercepts = fit_heads(summed(features.transform(docs)), y_main[:, : len(MAIN_HEADS)],
                                    y_labels[:, :0], like.config, seed, features.offsets[1],
                                    record_weights(ordered, source_weights))
    return replace(like, features=features, weights=weights.astype(np.float32), intercepts=intercepts,
                   train_prevalence=float(y_main[:, 2].mean()), label_modes=["rule"] * len(like.label_modes),
                   _heads=None, _inverse=None)


def flag_scores(model: TrainedModel, records: Sequence[LabelledReport], calibrated: TrainedModel) -> np.ndarray:
    """Flag scores of `model`'s heads through `calibrated`'s stacker and prior shift."""
    evaluated = model.heads().evaluate([analyse(r.text) for r in records])
    return sigmoid(stack(calibrated.stacker, evaluated.main) + calibrated.prior_shift)


def split_by_source(
    track: Sequence[LabelledReport], seed: int = 0
) -> tuple[list[LabelledReport], list[LabelledReport]]:
    """The track in two halves of whole sources: (advisers' decisions, held out)."""
    sources = sorted({r.source for r in track})
    rng = np.random.default_rng(seed)
    chosen = set(rng.permutation(sources)[: len(sources) // 2].tolist())
    decisions = [r for r in track if r.source in chosen]
    return decisions, [r for r in track if r.source not in chosen]


def feedback_simulation(hand: Sequence[LabelledReport], track: Sequence[LabelledReport],
                        sizes: Sequence[int] = (0, 50, 100, 200), weights: Sequence[float] = (1.0,),
                        seed: int = 0) -> Iterator[dict[str, Any]]:
    """Retrain with the first n of half the track as adviser decisions (weighted); figures on the other half.

    Each model is trained as `avvik model train --with-feedback` trains (`train` with the decisions under the
    source "review", cross-validation choosing stacker and threshold), measuring the flag only. Rows come
    as they are measured (each is a full training); none decisions is measured once, whatever the weights.
    """
    decisions, held = split_by_source(track, seed)
    order = np.random.default_rng(seed).permutation(len(decisions))
    y = np.array([r.labels.samhandling_barn_unge for r in held])
    for k, weight in enumerate(weights):
        for n in sizes:
            if n > len(decisions) or (n == 0 and k > 0):
                continue
            fed = [replace(decisions[i], source=FEEDBACK_SOURCE) for i in order[:n]]
            model = train([*hand, *fed], seed=seed, fit_labels=False,
                          source_weights={FEEDBACK_SOURCE: weight} if fed else None)
            scores = flag_scores(model, held, model)
            yield {"decisions": n, "weight": weight, "held_out": len(held),
                   "flag": with_intervals(y, scores, model.threshold, seed)}


def generalisation(hand: Sequence[LabelledReport], track: Sequence[LabelledReport], seed: int = 0,
                   reverse: bool = True, loso: bool = True) -> dict[str, Any]:
    """Forward (hand-written -> track), reverse (track -> hand-written) and leave-source-out figures."""
    forward_model = train(hand, seed=seed)
    forward = measure(forward_model, track, seed)
    out: dict[str, Any] = {"n_hand": len(hand), "n_track": len(track),
                           "track_sources": len({r.source for r in track}),
                           "model_version": forward_model.version, "forward": forward}
    if reverse:
        reverse_model = train(track, seed=seed, fit_labels=False)
        out["reverse"] = {"flag": measure(reverse_model, hand, seed)["flag"],
                          "cv_scheme": reverse_model.metrics["cv"]["scheme"]}
    if loso:
        out["leave_source_out"] = leave_source_out(hand, track, forward_model, seed)
    return out
