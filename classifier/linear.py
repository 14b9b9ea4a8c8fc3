"""Prediction-time evaluation of the linear heads, one cached lookup per distinct word.

A report's character n-grams enter its feature row once per distinct word, and each block of the row
is L2-normalised over its entries. So the block's squared norm and its dot product with any weight
column are sums over the report's words of per-word sums, which this module caches. Scoring then
costs one lookup per distinct word instead of a multiplication per n-gram (twenty to forty of them
per word), and gives the numbers `FeatureSpace.transform` followed by a matrix product gives, up to
float rounding.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from classifier.features import Doc, FeatureSpace, char_ngrams, normalise_blocks

_TABLE_LIMIT = 200_000  # distinct words; a long-running service starts a new table when it has seen more
_SPARSE_FROM = 16  # reports; fewer are multiplied densely


class WordTable:
    """Per distinct word: the sum of its n-grams' squared IDF, and their IDF-weighted head weights.

    Safe to share between threads: lookups of known words only read, and a new word is added under a
    lock. Rows are never moved to other indices, so an index stays valid for the table's lifetime.
    """

    def __init__(self, features: FeatureSpace, char_weights: np.ndarray) -> None:
        self._vocab = features.char_vocab
        self._idf = features.idf[: len(features.char_vocab)]
        self._weights = char_weights  # (char features, heads that use them)
        self._index: dict[str, int] = {}
        self._rows = np.zeros((1024, 1 + char_weights.shape[1]))
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._index)

    def indices(self, words: Sequence[str]) -> list[int]:
        """The row of every word, adding the words not seen before."""
        index = self._index
        try:
            return [index[w] for w in words]
        except KeyError:
            return [index[w] if w in index else self._add(w) for w in words]

    def rows(self, indices: np.ndarray) -> np.ndarray:
        """(len(indices), 1 + heads): squared-IDF sum, then one weighted sum per head."""
        rows: np.ndarray = self._rows[indices]
        return rows

    def _add(self, word: str) -> int:
        vocab = self._vocab
        ids = np.array([vocab[g] for g in char_ngrams(word) if g in vocab], dtype=np.int64)
        idf = self._idf[ids]
        row = np.concatenate([[idf @ idf], idf @ self._weights[ids]])
        with self._lock:
            if word in self._index:
                return self._index[word]
            at = len(self._index)
            if at == len(self._rows):
                # Grown into a copy, then swapped in: a reader holding the old array still finds its rows.
                grown = np.zeros((2 * at, self._rows.shape[1]))
                grown[:at] = self._rows
                self._rows = grown
            self._rows[at] = row
            self._index[word] = at
            return at


@dataclass(frozen=True, slots=True)
class Evaluated:
    """The heads' log-odds for a batch of reports, and what explanations need to split them."""

    main: np.ndarray  # (n, 2) log-odds of the main heads
    labels: np.ndarray  # (n, labels) log-odds of the label heads
    words: list[list[str]]  # per report, its distinct words in order of appearance
    word_sums: np.ndarray  # (words of all reports, 2): per word, its n-grams' sum towards each main head
    char_scales: np.ndarray  # (n,) the character block's factor (block weight over norm) per report
    text_columns: np.ndarray  # (entries,) word and meta features of every report, counted from the first word one
    text_main: np.ndarray  # (entries, 2) each entry's normalised value times the main heads' weights
    text_starts: np.ndarray  # (n + 1,) where each report's entries start


class LinearHeads:
    """The fitted heads of a model, evaluated per distinct word."""

    def __init__(
        self, features: FeatureSpace, weights: np.ndarray, intercepts: np.ndarray, main_heads: int,
        labels_use_characters: bool,
    ) -> None:
        """`weights` is (features, heads), the main heads first; the label heads weigh character n-grams only
        when `labels_use_characters` (otherwise their rows of the character block are zero)."""
        self.features = features
        self.main_heads = main_heads
        self.intercepts = np.asarray(intercepts, dtype=np.float64)
        weights = np.asarray(weights, dtype=np.float64)
        word_off = features.offsets[1]
        self._char_heads = weights.shape[1] if labels_use_characters else main_heads
        self._char_weights = np.ascontiguousarray(weights[:word_off, : self._char_heads])
        self.text_weights = np.ascontiguousarray(weights[word_off:])
        self._text_idf = np.ascontiguousarray(features.idf[word_off:])
        self._text_main_weights = np.ascontiguousarray(self.text_weights[:, :main_heads])
        self._table = WordTable(features, self._char_weights)

    def table(self) -> WordTable:
        """The current word table; a full one is replaced, so memory stays bounded."""
        table = self._table
        if len(table) >= _TABLE_LIMIT:
            table = self._table = WordTable(self.features, self._char_weights)
        return table

    def evaluate(self, docs: Sequence[Doc]) -> Evaluated:
        """Log-odds of every head for analysed reports."""
        table = self.table()
        words = [list(dict.fromkeys(doc.words)) for doc in docs]
        counts = [len(ws) for ws in words]
        index = np.array([i for ws in words for i in table.indices(ws)], dtype=np.intp)
        rows = table.rows(index)
        sums = _row_sums(rows, np.cumsum([0, *counts]))
        norms = np.sqrt(sums[:, 0])
        norms[norms == 0] = 1.0
        char_scales = self.features.block_weights[0] / norms
        heads, columns, main, text_starts = self._text_heads(docs)
        heads += self.intercepts
        heads[:, : self._char_heads] += sums[:, 1:] * char_scales[:, None]
        return Evaluated(main=heads[:, : self.main_heads], labels=heads[:, self.main_heads:], words=words,
                         word_sums=rows[:, 1: 1 + self.main_heads], char_scales=char_scales,
                         text_columns=columns, text_main=main, text_starts=text_starts)

    def _text_heads(self, docs: Sequence[Doc]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The word and meta blocks' part of every head, and their entries (as FeatureSpace.transform makes them)."""
        features = self.features
        _, word_off, meta_off, _ = features.offsets
        meta_start = meta_off - word_off
        word_get = features.word_vocab.get
        meta_get = features.meta_vocab.get
        columns: list[int] = []
        bounds = [0]  # the end of each report's word block, then of its meta block
        for doc in docs:
            columns += [j for f in dict.fromkeys(doc.unigrams + doc.bigrams) if (j := word_get(f)) is not None]
            bounds.append(len(columns))
            columns += [meta_start + j for f in dict.fromkeys(doc.meta) if (j := meta_get(f)) is not None]
            bounds.append(len(columns))
        n = len(docs)
        cols = np.array(columns, dtype=np.intp)
        starts = np.array(bounds[::2], dtype=np.intp)
        data = self._text_idf[cols]
        # Columns here count from the first word feature: the word block starts at 0, the meta block at meta_start.
        normalise_blocks(data, cols, starts, (0, 0, meta_start, len(self._text_idf)), features.block_weights)
        main = data[:, None] * self._text_main_weights[cols]
        if n < _SPARSE_FROM:
            # A sparse matrix costs more to build than a single report takes to score.
            heads = _row_sums(data[:, None] * self.text_weights[cols], starts)
        else:
            # The product with every head, without a (entries × heads) temporary of tens of MB for a batch.
            heads = np.asarray(sp.csr_matrix((data, cols, starts), shape=(n, len(self._text_idf))) @ self.text_weights)
        return heads, cols, main, starts


def _row_sums(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Per report, the sum of its rows of `values` (report i has rows starts[i]:starts[i + 1]; none sum to 0)."""
    sums = np.zeros((len(starts) - 1, values.shape[1]))
    filled = np.flatnonzero(np.diff(starts))
    if len(filled):
        # reduceat sums from each start to the next one given, so the starts of empty reports are left out.
        sums[filled] = np.add.reduceat(values, starts[filled], axis=0)
    return sums
