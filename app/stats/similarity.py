"""Text similarity between reports, for "similar reports" and recurring failures (pure, bounded cost).

Character n-grams within words (3–5) match Norwegian compounds and both written standards without a
stemmer; shared services add to the similarity, because the same failure between the same services is
what makes a failure recurring.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from sklearn.cluster import AgglomerativeClustering
from sklearn.feature_extraction.text import TfidfVectorizer

SERVICE_WEIGHT = 0.25  # how much sharing services counts beside the text


@dataclass(frozen=True)
class Doc:
    """What similarity reads of a report."""

    id: int
    text: str
    services: frozenset[str]
    unit: str | None = None


_WORD = re.compile(r"[a-zæøåA-ZÆØÅ]{5,}")


def _words(doc: Doc) -> frozenset[str]:
    return frozenset(w.casefold() for w in _WORD.findall(doc.text))


def _characteristic_words(group: Sequence[frozenset[str]], outside: Counter[str], everything: int,
                          n: int = 6) -> list[str]:
    """Words most of the group uses and most other reports do not: a readable hint of the failure.
    `outside` counts, for every word, the reports of `everything` that use it."""
    inside = Counter(w for words in group for w in words)
    rest = max(everything - len(group), 1)
    scored = {w: c / len(group) - (outside[w] - c) / rest for w, c in inside.items() if c >= 2}
    return [w for w, _ in sorted(scored.items(), key=lambda x: (-x[1], x[0]))[:n]]


def _vectors(docs: Sequence[Doc], grams: dict[int, list[str]] | None = None) -> tuple[TfidfVectorizer,
                                                                                    sparse.csr_matrix]:
    """TF-IDF of character n-grams within words (3–5). `grams` holds each document's n-grams when they
    were cut already: the weights are the same, only the cutting is not repeated."""
    if grams is None:
        vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), min_df=1, sublinear_tf=True,
                                     lowercase=True)
        return vectorizer, vectorizer.fit_transform([d.text for d in docs])
    vectorizer = TfidfVectorizer(analyzer=grams.__getitem__, min_df=1, sublinear_tf=True)
    return vectorizer, vectorizer.fit_transform([d.id for d in docs])


def _cut(docs: Sequence[Doc]) -> dict[int, list[str]]:
    """Each document's character n-grams, as _vectors cuts them."""
    analyzer = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), lowercase=True).build_analyzer()
    return {d.id: analyzer(d.text) for d in docs}


def _service_overlap(a: frozenset[str], b: frozenset[str]) -> float:
    union = a | b
    return len(a & b) / len(union) if union else 0.0


def most_similar(target: Doc, candidates: Sequence[Doc], limit: int) -> list[tuple[int, float]]:
    """(id, similarity in [0, 1]) of the candidates most like the target, best first."""
    others = [c for c in candidates if c.id != target.id]
    if not others:
        return []
    _, matrix = _vectors([target, *others])
    text = (matrix[1:] @ matrix[0].T).toarray().ravel()
    scores = [(1 - SERVICE_WEIGHT) * t + SERVICE_WEIGHT * _service_overlap(target.services, c.services)
              for t, c in zip(text, others, strict=True)]
    ranked = sorted(zip((c.id for c in others), scores, strict=True), key=lambda x: (-x[1], x[0]))
    return [(i, round(float(s), 4)) for i, s in ranked[:limit]]


@dataclass(frozen=True)
class Group:
    """Reports that describe the same failure between the same services."""

    ids: list[int]
    services: list[str]
    units: list[str]
    terms: list[str]


def _clusters(matrix: sparse.csr_matrix, max_distance: float) -> np.ndarray:
    """Average-linkage clusters on cosine distance. TF-IDF rows have unit length, so the distances are
    1 − the sparse dot products: an n × n matrix, where the dense document matrix would be n × every n-gram."""
    distances = 1.0 - (matrix @ matrix.T).toarray()
    np.clip(distances, 0.0, 2.0, out=distances)
    np.fill_diagonal(distances, 0.0)
    return AgglomerativeClustering(n_clusters=None, metric="precomputed", linkage="average",
                                   distance_threshold=max_distance).fit_predict(distances)


def recurring_groups(docs: Sequence[Doc], min_size: int, max_distance: float = 0.75) -> list[Group]:
    """Groups of at least `min_size` similar reports, largest first: the reports are split by the pair of
    services they name, then clustered by text (average linkage on cosine distance)."""
    by_services: dict[frozenset[str], list[Doc]] = {}
    for doc in docs:
        by_services.setdefault(doc.services - {"it_system"}, []).append(doc)
    groups: list[Group] = []
    # Computed once for all groups: the n-grams of every document, and which reports use which word.
    grams = _cut([d for members in by_services.values() if len(members) >= min_size for d in members])
    words = {d.id: _words(d) for d in docs}
    outside = Counter(w for d in docs for w in words[d.id])
    for services, members in by_services.items():
        if len(members) < min_size:
            continue
        _, matrix = _vectors(members, grams)
        labels = _clusters(matrix, max_distance) if len(members) > 1 else np.zeros(1, dtype=int)
        for label in set(labels):
            chosen = [m for m, lab in zip(members, labels, strict=True) if lab == label]
            if len(chosen) < min_size:
                continue
            units = [u for u, _ in Counter(m.unit for m in chosen if m.unit).most_common(5)]
            groups.append(Group(ids=sorted(m.id for m in chosen), services=sorted(services), units=units,
                                terms=_characteristic_words([words[m.id] for m in chosen], outside, len(docs))))
    return sorted(groups, key=lambda g: (-len(g.ids), g.ids[0]))
