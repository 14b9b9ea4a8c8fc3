"""Explanations: the words, word pairs and meta tokens that moved a report's flag score, worded as written.

The model splits each report's change of the flag log-odds over its features (`TrainedModel.attribution_slopes`);
this module ranks those shares and names them as the reporter wrote them ("ikke fått", not the stems
"ikke neg_få") or as readable meta tokens ("[alder: barn_6_12]").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from classifier.features import Doc
from classifier.linear import Evaluated
from classifier.text import NEG_PREFIX, NEGATION_SCOPE, NEGATIONS


@dataclass(frozen=True, slots=True)
class Explanation:
    """One readable term and how much it moved the score (log-odds; positive means towards flagging)."""

    term: str
    weight: float

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"term": self.term, "weight": self.weight}


def explain(
    docs: Sequence[Doc], evaluated: Evaluated, slopes: np.ndarray, names: Sequence[str],
    offsets: tuple[int, int, int, int], top: int,
) -> list[list[Explanation]]:
    """Per report, the `top` terms that moved the flag score most, from per-head slopes and column names."""
    # A word's share is its n-grams' share: the character block's factor times their summed weights.
    word_counts = np.fromiter(map(len, evaluated.words), dtype=np.int64, count=len(docs))
    word_values = (evaluated.word_sums * np.repeat(slopes * evaluated.char_scales[:, None], word_counts, axis=0)
                   ).sum(axis=1)
    starts = evaluated.text_starts
    rows = np.repeat(np.arange(len(docs)), np.diff(starts))
    text_values = (evaluated.text_main * slopes[rows]).sum(axis=1)
    word_off, meta_off = offsets[1:3]
    out = []
    first_word = 0
    for i, doc in enumerate(docs):
        terms: dict[str, float] = {}
        words = evaluated.words[i]
        values = word_values[first_word: first_word + len(words)]
        first_word += len(words)
        for k in largest(values, top):
            label = doc.surfaces[doc.words.index(words[k])]
            terms[label] = terms.get(label, 0.0) + float(values[k])
        start, end = starts[i], starts[i + 1]
        values = text_values[start:end]
        for k in largest(values, top):
            col = word_off + int(evaluated.text_columns[start + k])
            label = readable_meta(names[col]) if col >= meta_off else feature_label(doc, names[col])
            terms[label] = terms.get(label, 0.0) + float(values[k])
        ranked = sorted(terms.items(), key=lambda kv: -abs(kv[1]))[:top]
        out.append([Explanation(term, round(value, 3)) for term, value in ranked if value])
    return out


def largest(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k values largest in magnitude (all of them when there are fewer)."""
    if len(values) <= k:
        return np.arange(len(values))
    return np.argpartition(-np.abs(values), k)[:k]


def feature_label(doc: Doc, feature: str) -> str:
    """A word feature as the reporter wrote it: "ikke fått", not the stems "ikke neg_få"."""
    first, _, second = feature.partition(" ")
    if not second:
        k = doc.unigrams.index(feature) if feature in doc.unigrams else -1
        if k < 0:
            return feature
        return negated(doc, k, doc.surfaces[k]) if feature.startswith(NEG_PREFIX) else doc.surfaces[k]
    unigrams, k = doc.unigrams, -1
    while first in unigrams[k + 1:]:
        k = unigrams.index(first, k + 1)
        if k + 1 < len(unigrams) and unigrams[k + 1] == second:
            return f"{doc.surfaces[k]} {doc.surfaces[k + 1]}"
    return feature


def negated(doc: Doc, i: int, surface: str) -> str:
    """The negation cue shown with the word it negates: "ingen tilbakemelding", "ikke ... beskjed"."""
    for back in range(1, NEGATION_SCOPE + 1):
        if i - back < 0:
            break
        if doc.unigrams[i - back] in NEGATIONS:
            gap = " " if back == 1 else " … "
            return doc.surfaces[i - back] + gap + surface
    return surface


META_LABELS = {
    "cat": "kategori", "catgroup": "kategorigruppe", "agency": "etat", "unit": "meldende tjeneste",
    "svc": "nevner", "svctitle": "tittel nevner", "nsvc": "tjenester nevnt", "nother": "andre tjenester nevnt",
    "age": "alder", "grade": "trinn", "word": "ord om", "agegroup": "aldersgruppe", "ctx": "sammenheng",
}


def readable_meta(token: str) -> str:
    """A meta token in words an adviser reads: "[alder: barn_6_12]", "[kategorigruppe: annen]"."""
    kind, _, value = token.partition(":")
    if kind == "catgroup":
        value = "Kommunikasjon og samhandling" if value == "communication" else "annen"
    elif kind == "agegroup":
        value = "barn/unge 0–25" if value == "child_or_youth" else "voksen"
    return f"[{META_LABELS.get(kind, kind)}: {value}]"
