"""Text similarity between reports, for "similar reports" and recurring failures (pure, bounded cost).

Character n-grams within words (3–5) match Norwegian compounds and both written standards without a
stemmer; shared services add to the similarity, because the same failure between the same services is
what makes a failure recurring.

The weighting is scikit-learn's `TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True)`
(smooth idf, l2 norm) and the clustering its `AgglomerativeClustering(metric="precomputed",
linkage="average", distance_threshold=…)`, written with numpy and scipy so that a server does not import
scikit-learn (some 60 MB) to compare texts; tests/app/test_similarity.py holds both to the same answers.

Dashboards repeat their queries, so what is costly is kept for the next request in small bounded caches,
keyed by the candidates' own content (id, text, unit, services): a new or changed report changes the key,
so an answer is never computed from stale text.
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from functools import lru_cache, partial
from itertools import chain
from typing import Generic, TypeVar

import numpy as np
from scipy import sparse
from scipy.cluster.hierarchy import fcluster, linkage

SERVICE_WEIGHT = 0.25  # how much sharing services counts beside the text
NGRAMS = (3, 5)


@dataclass(frozen=True)
class Doc:
    """What similarity reads of a report."""

    id: int
    text: str
    services: frozenset[str]
    unit: str | None = None


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Bounded(Generic[K, V]):
    """A least-recently-used map of at most `size` entries, safe to share between request threads."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K, compute: Callable[[], V]) -> V:
        """The value kept for key, or compute() kept in place of the least recently used one."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = compute()  # outside the lock: two threads may compute the same value, never a wrong one
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


# Bounded by what they hold: a set of 2,000 candidates, counted, is about 12 MB of n-grams (one set is kept:
# the server's memory budget is 200 MB); a group's labels are a few bytes a report. Keys are fingerprints
# of the content, 16 bytes whatever the reports.
_candidates: Bounded[bytes, Candidates] = Bounded(1)
_groups: Bounded[tuple[bytes, float], np.ndarray] = Bounded(4096)
_answers: Bounded[tuple[bytes, int, float], list[Group]] = Bounded(16)


def fingerprint(docs: Sequence[Doc]) -> bytes:
    """A 128-bit BLAKE2 digest of everything similarity reads of the documents, in order: any new, removed
    or changed report (text, unit, services) changes it; lengths first, so no text can imitate a boundary."""
    digest = hashlib.blake2b(digest_size=16)
    for d in docs:
        unit = d.unit or ""
        services = ",".join(sorted(d.services))
        digest.update(f"{d.id}:{len(d.text)}:{len(unit)}:{len(services)}:{d.text}{unit}{services}"
                      .encode("utf-8", "surrogatepass"))
    return digest.digest()


def clear_caches() -> None:
    """Forget every kept vector, cluster and answer (for tests and after a change of method)."""
    for cache in (_candidates, _groups, _answers):
        cache.clear()
    _word_grams.cache_clear()


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


@lru_cache(maxsize=8192)  # words repeat from report to report; some 1 kB each, so at most about 8 MB
def _word_grams(word: str) -> tuple[str, ...]:
    padded = f" {word} "
    length = len(padded)
    result: list[str] = []
    for n in range(NGRAMS[0], NGRAMS[1] + 1):
        if length <= n:
            result.append(padded)
            break
        result.extend(padded[i:i + n] for i in range(length - n + 1))
    return tuple(result)


def grams(text: str) -> list[str]:
    """Character n-grams within words, each word padded with a space on both sides (scikit-learn's
    "char_wb" analyzer on lower-cased text; a word shorter than an n is counted once, whole)."""
    return list(chain.from_iterable(map(_word_grams, text.lower().split())))


def _idf(n: int, df: np.ndarray) -> np.ndarray:
    """Smooth inverse document frequency: ln((1 + n) / (1 + df)) + 1."""
    return np.log((1.0 + n) / (1.0 + df)) + 1.0


@dataclass(frozen=True)
class Counts:
    """Sublinear term frequencies (1 + ln count) of documents over their own vocabulary, unweighted."""

    vocabulary: dict[str, int]
    tf: sparse.csr_matrix  # documents × n-grams
    df: np.ndarray  # documents that use each n-gram

    @classmethod
    def of(cls, texts: Sequence[list[str]]) -> Counts:
        """Count the n-grams of each document."""
        # Each n-gram's column is the size of the vocabulary when it is first seen: numbered in C, not in a loop.
        vocabulary: defaultdict[str, int] = defaultdict()
        vocabulary.default_factory = vocabulary.__len__
        lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
        columns = np.fromiter(map(vocabulary.__getitem__, chain.from_iterable(texts)), dtype=np.int32,
                              count=int(lengths.sum()))
        vocabulary.default_factory = None
        rows = np.repeat(np.arange(len(texts), dtype=np.int32), lengths)
        tf = sparse.csr_matrix((np.ones(len(columns)), (rows, columns)), shape=(len(texts), len(vocabulary)))
        tf.sum_duplicates()  # the count of each n-gram in each document
        np.log(tf.data, out=tf.data)
        tf.data += 1.0
        df = np.bincount(tf.indices, minlength=len(vocabulary)).astype(np.float64)
        return cls(vocabulary, tf, df)

    def weighted(self) -> sparse.csr_matrix:
        """TF-IDF rows of unit length (a document without n-grams stays a zero row)."""
        matrix = self.tf @ sparse.diags(_idf(self.tf.shape[0], self.df))
        norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        return sparse.csr_matrix(sparse.diags(1.0 / norms) @ matrix)


@dataclass(frozen=True)
class Candidates:
    """The candidates of a "similar reports" question, counted once and kept for the next target."""

    docs: tuple[Doc, ...]
    counts: Counts
    position: dict[int, int]  # id -> row

    @classmethod
    def of(cls, docs: tuple[Doc, ...]) -> Candidates:
        """Count the candidates' n-grams."""
        counts = Counts.of([grams(d.text) for d in docs])
        return cls(docs, counts, {d.id: i for i, d in enumerate(docs)})

    def text_similarity(self, target: Doc) -> np.ndarray:
        """Cosine similarity of every candidate to the target, weighted as if TF-IDF were fitted on the target
        and the other candidates (the target's own row, if it is a candidate, left out), without refitting."""
        counts, vocabulary = self.counts, self.counts.vocabulary
        mine = Counter(grams(target.text))
        known = {vocabulary[g]: 1.0 + math.log(c) for g, c in mine.items() if g in vocabulary}
        unknown = np.array([1.0 + math.log(c) for g, c in mine.items() if g not in vocabulary])
        columns = np.fromiter(known, dtype=np.int64, count=len(known))
        tf = np.fromiter(known.values(), dtype=np.float64, count=len(known))
        df = counts.df.copy()
        n = len(self.docs) + 1
        row = self.position.get(target.id)
        if row is not None:
            n -= 1
            df[counts.tf.indices[counts.tf.indptr[row]:counts.tf.indptr[row + 1]]] -= 1.0
        df[columns] += 1.0
        idf = _idf(n, df)
        weights = tf * idf[columns]
        # An n-gram only the target uses has df 1: it counts in the target's length, never in a dot product.
        length = math.sqrt(float(weights @ weights) + float(((unknown * _idf(n, np.ones(1))) ** 2).sum()))
        vector = np.zeros(len(vocabulary))
        vector[columns] = weights * idf[columns]
        dots = counts.tf @ vector
        # tf² is made for the moment, not kept: 7 MB for 2,000 candidates, 2 ms to make
        norms = np.sqrt(counts.tf.power(2) @ (idf * idf))
        with np.errstate(divide="ignore", invalid="ignore"):
            result = np.where((norms > 0) & (length > 0), dots / (norms * (length or 1.0)), 0.0)
        return result


def _service_overlap(a: frozenset[str], b: frozenset[str]) -> float:
    union = a | b
    return len(a & b) / len(union) if union else 0.0


def most_similar(target: Doc, candidates: Sequence[Doc], limit: int) -> list[tuple[int, float]]:
    """(id, similarity in [0, 1]) of the candidates most like the target, best first."""
    key = tuple(candidates)
    if not any(c.id != target.id for c in key):
        return []
    kept = _candidates.get(fingerprint(key), lambda: Candidates.of(key))
    text = kept.text_similarity(target)
    scored = [(c.id, (1 - SERVICE_WEIGHT) * float(t) + SERVICE_WEIGHT * _service_overlap(target.services, c.services))
              for c, t in zip(key, text, strict=True) if c.id != target.id]
    ranked = sorted(scored, key=lambda x: (-x[1], x[0]))
    return [(i, round(s, 4)) for i, s in ranked[:limit]]


@dataclass(frozen=True)
class Group:
    """Reports that describe the same failure between the same services."""

    ids: list[int]
    services: list[str]
    units: list[str]
    terms: list[str]


def clusters(matrix: sparse.csr_matrix, max_distance: float) -> np.ndarray:
    """Average-linkage clusters on cosine distance, merged while the distance is below `max_distance`.
    TF-IDF rows have unit length, so the distances are 1 − the sparse dot products (n × n, where the dense
    document matrix would be n × every n-gram); labels number the clusters in no particular order."""
    n = matrix.shape[0]
    if n < 2:
        return np.zeros(n, dtype=int)
    distances = 1.0 - (matrix @ matrix.T).toarray()
    np.clip(distances, 0.0, 2.0, out=distances)
    upper = distances[np.triu_indices(n, k=1)]  # the upper triangle, as scikit-learn reads a precomputed matrix
    tree = linkage(upper, method="average")
    # fcluster keeps merges at distances ≤ t; scikit-learn's threshold keeps those < t.
    labels: np.ndarray = fcluster(tree, t=np.nextafter(max_distance, -np.inf), criterion="distance")
    return labels


def _group_labels(members: tuple[Doc, ...], max_distance: float) -> np.ndarray:
    return clusters(Counts.of([grams(d.text) for d in members]).weighted(), max_distance)


def recurring_groups(docs: Sequence[Doc], min_size: int, max_distance: float = 0.75) -> list[Group]:
    """Groups of at least `min_size` similar reports, largest first: the reports are split by the pair of
    services they name, then clustered by text (average linkage on cosine distance)."""
    key = tuple(docs)
    return _answers.get((fingerprint(key), min_size, max_distance), lambda: _recurring(key, min_size, max_distance))


def _recurring(docs: tuple[Doc, ...], min_size: int, max_distance: float) -> list[Group]:
    by_services: dict[frozenset[str], list[Doc]] = {}
    for doc in docs:
        by_services.setdefault(doc.services - {"it_system"}, []).append(doc)
    groups: list[Group] = []
    words = {d.id: _words(d) for d in docs}
    outside = Counter(w for d in docs for w in words[d.id])
    for services, listed in by_services.items():
        if len(listed) < min_size:
            continue
        members = tuple(listed)
        # Kept per group of services: a new report changes its own group's key and no other.
        labels = _groups.get((fingerprint(members), max_distance), partial(_group_labels, members, max_distance))
        for label in dict.fromkeys(labels.tolist()):
            chosen = [m for m, lab in zip(members, labels, strict=True) if lab == label]
            if len(chosen) < min_size:
                continue
            units = [u for u, _ in Counter(m.unit for m in chosen if m.unit).most_common(5)]
            groups.append(Group(ids=sorted(m.id for m in chosen), services=sorted(services), units=units,
                                terms=_characteristic_words([words[m.id] for m in chosen], outside, len(docs))))
    return sorted(groups, key=lambda g: (-len(g.ids), g.ids[0]))
