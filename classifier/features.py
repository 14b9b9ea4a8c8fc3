"""Analyse reports into words, word features and meta tokens, and (for training) one sparse TF-IDF matrix.

A hand-written vectoriser, not sklearn's: its rows are built so that a linear model over them can be
evaluated word by word at prediction time (`classifier.linear`), much faster than TfidfVectorizer(
analyzer="char_wb") with the same features.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from classifier import cues, gazetteer, rules
from classifier.records import ReportText
from classifier.taxonomy import CHILD_AND_YOUTH_GROUPS, is_communication_category
from classifier.text import (
    BOUNDARIES,
    NEG_PREFIX,
    NEGATION_SCOPE,
    NEGATIONS,
    content_tokens,
    expand_abbreviations,
    normalise,
    normalised_chunks,
    stem,
    strip_markers,
    to_bokmal,
    tokenize,
)

CHAR_NGRAMS = (2, 5)
_CACHE_LIMIT = 200_000  # words; the cache is cleared when a long-running service has seen more


@dataclass(slots=True)
class Doc:
    """One analysed report: its words, word features, meta tokens, and what to show in explanations."""

    words: list[str]  # bokmål forms, in order, without punctuation
    surfaces: list[str]  # the words as written (lower-cased)
    unigrams: list[str]  # one word feature per word (stem, or neg_stem inside a negation scope)
    bigrams: list[str]  # "a b" for consecutive words of one clause
    meta: list[str]


# token -> (bokmål form, stem, meta tokens the word gives alone, literal prefixes of the known phrases
# text starting with this word may hold, the token itself, is a negation cue). The token and the cue
# flag ride along so that analyse gets every per-word field by slicing, and selects with
# itertools.compress, instead of a Python loop per field.
_Lexeme = tuple[str, str, tuple[str, ...], tuple[str, ...], str, bool]
_LEXICON: dict[str, _Lexeme] = {}
# whitespace-free chunk of normalised text -> the lexemes of its tokens, flattened into one tuple.
# Chunks repeat far more than whole texts ("beskjed", "beskjed.", "(bup)"), and a dict lookup is much
# cheaper than the tokenizer regex; flat, so that analyse gets each field with one slice.
_CHUNKS: dict[str, tuple[Any, ...]] = {}
_FIELDS = 6  # length of a _Lexeme
_CHUNK_LIMIT = 100_000  # about 180 bytes each: under 20 MB
_PHRASE_STARTS = frozenset(w.rstrip("-") for w in gazetteer.PHRASE_STARTS | rules.PHRASE_STARTS | cues.PHRASE_STARTS)
_PHRASE_PREFIXES = gazetteer.PHRASE_PREFIXES + rules.PHRASE_PREFIXES + cues.PHRASE_PREFIXES
_DIGIT = re.compile(r"\d")


def _lexeme(token: str) -> _Lexeme:
    entry = _LEXICON.get(token)
    if entry is None:
        if token in BOUNDARIES:
            # Checked here, not pre-seeded in the cache, so that clearing the cache cannot turn a
            # boundary into a word.
            entry = ("", "", (), (), token, False)
        else:
            word = to_bokmal(token)
            service = gazetteer.word_service(token)
            group = rules.word_hint(token)
            cue = cues.word_cue(token)
            meta = tuple(t for t in (service and "svc:" + service, group and "word:" + group, cue and "cue:" + cue)
                         if t)
            # Text where this token starts can hold a phrase only if a phrase's literal prefix starts with
            # the token (a prefix holds a space, a token does not).
            prefixes = tuple(p for p in _PHRASE_PREFIXES if p.startswith(token)) if token in _PHRASE_STARTS else ()
            entry = (word, stem(word), meta, prefixes, token, word in NEGATIONS)
        if len(_LEXICON) >= _CACHE_LIMIT:
            _LEXICON.clear()
        _LEXICON[token] = entry
    return entry


def _chunk(chunk: str) -> tuple[Any, ...]:
    # Tokens never contain a space, so tokenizing each chunk gives the tokens of the whole text. Numbers,
    # months, weekdays and places are dropped and abbreviations written out here, once per distinct chunk.
    flat = tuple(itertools.chain.from_iterable(_lexemes(token) for token in content_tokens(tokenize(chunk))))
    if len(_CHUNKS) >= _CHUNK_LIMIT:
        _CHUNKS.clear()
    _CHUNKS[chunk] = flat
    return flat


def _lexemes(token: str) -> tuple[Any, ...]:
    """The flat lexemes of one token: an abbreviation gives those of its full name, with its own meta tokens."""
    parts = expand_abbreviations([token])
    if len(parts) == 1 and parts[0] == token:
        return _lexeme(token)
    lexemes: list[list[Any]] = [list(_lexeme(part)) for part in parts]
    # The gazetteer knows "ke" as the coordinating unit, but "koordinerende" alone as nothing.
    lexemes[0][2] = tuple(dict.fromkeys(lexemes[0][2] + _lexeme(token)[2]))
    return tuple(itertools.chain.from_iterable(lexemes))


def analyse(report: ReportText) -> Doc:
    """Analyse one report; empty or missing text gives a document with only meta tokens."""
    title_chunks = normalised_chunks(strip_markers(report.title or ""))
    body_chunks = normalised_chunks(strip_markers(report.description or ""))
    title = " ".join(title_chunks)
    chunks = [*title_chunks, ".", *body_chunks] if title_chunks and body_chunks else title_chunks or body_chunks
    text = " ".join(chunks)
    # This runs for every word of every report, so every per-word step below is a C-level loop
    # (dict lookups, slices, compress, map); Python-level code runs per negation only.
    cache = _CHUNKS
    flat: list[Any]
    try:
        flat = list(itertools.chain.from_iterable(map(cache.__getitem__, chunks)))
    except KeyError:
        # get, not `in` then [], so that another thread clearing the cache in between does no harm.
        flat = list(itertools.chain.from_iterable([cache.get(c) or _chunk(c) for c in chunks]))
    if not flat:
        return Doc([], [], [], [], meta_tokens(report, title, set()))
    words: list[str] = flat[0::_FIELDS]
    stems: list[str] = flat[1::_FIELDS]
    metas: list[tuple[str, ...]] = flat[2::_FIELDS]
    prefixes: list[tuple[str, ...]] = flat[3::_FIELDS]
    tokens: list[str] = flat[4::_FIELDS]
    cues: list[bool] = flat[5::_FIELDS]
    n = len(words)
    features: list[str] = flat[1::_FIELDS]  # stems, then negation marks
    for i in itertools.compress(range(n), cues):
        features[i] = words[i]
        for k in range(i + 1, min(i + 1 + NEGATION_SCOPE, n)):
            if not words[k] or cues[k]:
                break
            features[k] = NEG_PREFIX + stems[k]
    bigrams = [f"{a} {b}" for a, b in itertools.pairwise(features) if a and b]
    found = set(itertools.chain.from_iterable(filter(None, metas)))
    phrase_prefixes = set(itertools.chain.from_iterable(filter(None, prefixes)))
    if phrase_prefixes:
        found.update(_phrases(text, phrase_prefixes))
    if _DIGIT.search(text):
        # From the text, not the tokens: numbers are not among the tokens (text.is_neutral).
        found.update(rules.numeric_hints(text))
    # A boundary has an empty bokmål form: the words select what a Doc keeps.
    return Doc(list(filter(None, words)), list(itertools.compress(tokens, words)),
               list(itertools.compress(features, words)), bigrams, meta_tokens(report, title, found))


def _phrases(text: str, prefixes: set[str]) -> list[str]:
    """Meta tokens of multi-word aliases and hints found at a word start holding one of `prefixes`."""
    # Only where the text holds a phrase's literal prefix can a phrase regex match, so searching for
    # those prefixes ("den offentlige") skips the many plain uses of a start word ("den", "har").
    positions: set[int] = set()
    for prefix in prefixes:
        at = text.find(prefix)
        while at >= 0:
            positions.add(at)
            at = text.find(prefix, at + 1)
    out = []
    for at in sorted(positions):
        if at == 0 or not (text[at - 1].isalnum() or text[at - 1] in "-_"):
            if service := gazetteer.phrase_service(text, at):
                out.append("svc:" + service)
            if group := rules.phrase_hint(text, at):
                out.append("word:" + group)
            if cue := cues.phrase_cue(text, at):
                out.append("cue:" + cue)
    return out


# (category, unit) -> their tokens and the unit's own services: a few hundred distinct pairs in practice.
_CONTEXT: dict[tuple[str | None, str | None], tuple[tuple[str, ...], tuple[str, ...]]] = {}


def _context_tokens(raw_category: str | None, raw_unit: str | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    tokens: list[str] = []
    category = normalise(raw_category)
    if category:
        tokens.append("cat:" + category)
        tokens.append("catgroup:" + ("communication" if is_communication_category(category) else "other"))
    else:
        tokens.append("cat:none")
    own: tuple[str, ...] = ()
    unit = normalise(raw_unit)
    if unit:
        agency = unit.split(" – ")[0].split(" - ")[0].strip()
        tokens.append("agency:" + agency)
        own = gazetteer.unit_services(unit)
        tokens.extend("unit:" + service for service in own)
    if len(_CONTEXT) >= 10_000:
        _CONTEXT.clear()
    _CONTEXT[(raw_category, raw_unit)] = (tuple(tokens), own)
    return tuple(tokens), own


def meta_tokens(report: ReportText, title: str, found: set[str]) -> list[str]:
    """Category, reporting unit, services named, target-group hints, and counts of parties, as tokens."""
    context = _CONTEXT.get((report.reported_category, report.reporting_unit))
    if context is None:
        context = _context_tokens(report.reported_category, report.reporting_unit)
    tokens, own = list(context[0]), context[1]
    # One token for "a person aged 0-25 is named", learnt from every child age group at once, so that a
    # rare group (a 20-year-old) gets the same push as a common one (a 7-year-old).
    ages: set[str] = set()
    named: set[str] = set()
    concepts: set[str] = set()
    for t in found:
        kind, _, value = t.partition(":")
        if kind == "svc":
            named.add(value)
        elif kind in ("age", "grade"):
            ages.add(value)
        elif kind == "cue":
            concepts.add(value)
    if not concepts.isdisjoint(cues.COORDINATION):
        tokens.append("cue:any_coordination")
    if not ages.isdisjoint(CHILD_AND_YOUTH_GROUPS):
        tokens.append("agegroup:child_or_youth")
    if not ages.issubset(CHILD_AND_YOUTH_GROUPS):
        tokens.append("agegroup:adult")
    real = {service for service in named if not service.startswith("_")}
    tokens.extend(sorted(found))
    tokens.extend(sorted({"svctitle:" + service for service, _ in gazetteer.find_services(title)}))
    # Collaboration needs a second party: count the services named besides the reporter's own, and
    # "tjenestene", "hverandre" or "andre tjenester" as one more (parties named in the abstract).
    others = real.difference(own, ("it_system",))
    abstract = "parties" in concepts
    tokens.append(f"nsvc:{min(len(real) + abstract, 3)}")
    tokens.append(f"nother:{min(len(others) + abstract, 2)}")
    if "_helsesykepleier" in named:
        # A public-health nurse at a school is the school health service; with babies, the health station.
        school = "skole" in own or "skole" in real or any(t.endswith(("barn_6_12", "ungdom_13_17")) for t in found)
        tokens.append("ctx:nurse_school" if school else "ctx:nurse_other")
    return tokens


@dataclass
class FeatureSpace:
    """Vocabularies, IDF weights and block weights; fitted on training reports, then fixed."""

    char_vocab: dict[str, int] = field(default_factory=dict)
    word_vocab: dict[str, int] = field(default_factory=dict)
    meta_vocab: dict[str, int] = field(default_factory=dict)
    idf: np.ndarray = field(default_factory=lambda: np.zeros(0))
    block_weights: tuple[float, float, float] = (1.0, 1.0, 0.6)
    min_df: int = 2
    _char_cache: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def offsets(self) -> tuple[int, int, int, int]:
        """Start of each block in the feature vector, and the total width."""
        a = len(self.char_vocab)
        b = a + len(self.word_vocab)
        return 0, a, b, b + len(self.meta_vocab)

    @property
    def n_features(self) -> int:
        """Width of the feature matrix."""
        return self.offsets[3]

    def fit(self, docs: Sequence[Doc]) -> FeatureSpace:
        """Build vocabularies (min_df for text, every meta token) and smoothed IDF from analysed docs."""
        char_df: Counter[str] = Counter()
        word_df: Counter[str] = Counter()
        meta_df: Counter[str] = Counter()
        grams_of: dict[str, list[str]] = {}
        for doc in docs:
            grams: set[str] = set()
            for word in set(doc.words):
                if word not in grams_of:
                    grams_of[word] = char_ngrams(word)
                grams.update(grams_of[word])
            char_df.update(grams)
            word_df.update(set(doc.unigrams) | set(doc.bigrams))
            meta_df.update(set(doc.meta))
        self.char_vocab = _vocabulary(char_df, self.min_df)
        self.word_vocab = _vocabulary(word_df, self.min_df)
        self.meta_vocab = _vocabulary(meta_df, 1)
        n = len(docs)
        df = np.concatenate([
            _df_array(char_df, self.char_vocab), _df_array(word_df, self.word_vocab),
            _df_array(meta_df, self.meta_vocab),
        ])
        self.idf = (np.log((1 + n) / (1 + df)) + 1).astype(np.float64)
        self._char_cache = {}
        return self

    def char_ids(self, word: str) -> np.ndarray:
        """Column indices of the known character n-grams of one word (cached)."""
        ids = self._char_cache.get(word)
        if ids is None:
            vocab = self.char_vocab
            ids = np.array([vocab[g] for g in char_ngrams(word) if g in vocab], dtype=np.int64)
            if len(self._char_cache) >= _CACHE_LIMIT:
                self._char_cache.clear()
            self._char_cache[word] = ids
        return ids

    def transform(self, docs: Sequence[Doc]) -> sp.csr_matrix:
        """TF-IDF matrix (binary tf, each block L2-normalised and weighted) of analysed docs.

        Presence, not counts: each distinct word adds its n-grams once, each distinct word feature or
        meta token counts once. An n-gram shared by two words of a report stays as two entries of the
        row (a linear model sums them), which spares sorting every row and lets `classifier.linear`
        evaluate a row word by word. Prediction goes through `classifier.linear`; this is for training.
        """
        n = len(docs)
        _, word_off, meta_off, width = self.offsets
        cache = self._char_cache
        char_ids = self.char_ids
        word_get = self.word_vocab.get
        meta_get = self.meta_vocab.get
        parts: list[np.ndarray] = []
        indptr = np.zeros(n + 1, dtype=np.int64)
        for i, doc in enumerate(docs):
            words = list(dict.fromkeys(doc.words))
            try:
                parts.extend([cache[w] for w in words])
            except KeyError:
                parts.extend([char_ids(w) for w in words])
            text = [word_off + j for f in dict.fromkeys(doc.unigrams + doc.bigrams) if (j := word_get(f)) is not None]
            text += [meta_off + j for f in dict.fromkeys(doc.meta) if (j := meta_get(f)) is not None]
            parts.append(np.array(text, dtype=np.int64))
            indptr[i + 1] = indptr[i] + sum(map(len, parts[-len(words) - 1:]))
        indices = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        data = self.idf[indices]
        normalise_blocks(data, indices, indptr, self.offsets, self.block_weights)
        return sp.csr_matrix((data, indices, indptr), shape=(n, width))


def char_ngrams(word: str) -> list[str]:
    """Character n-grams of a word padded with spaces, as sklearn's char_wb analyser makes them."""
    padded = f" {word} "
    low, high = CHAR_NGRAMS
    out: list[str] = []
    for n in range(low, high + 1):
        if n > len(padded):
            break
        out.extend(padded[i:i + n] for i in range(len(padded) - n + 1))
    return out


def _vocabulary(df: Counter[str], min_df: int) -> dict[str, int]:
    # Sorted so that the same data always gives the same column order.
    return {term: i for i, term in enumerate(sorted(t for t, c in df.items() if c >= min_df))}


def _df_array(df: Counter[str], vocab: dict[str, int]) -> np.ndarray:
    out = np.zeros(len(vocab))
    for term, j in vocab.items():
        out[j] = df[term]
    return out


def normalise_blocks(
    data: np.ndarray, indices: np.ndarray, indptr: np.ndarray, offsets: tuple[int, int, int, int],
    weights: tuple[float, float, float],
) -> None:
    """Scale, in place, each row of each block to unit L2 norm times the block weight."""
    n = len(indptr) - 1
    row_of = np.repeat(np.arange(n), np.diff(indptr))
    block_of = (indices >= offsets[1]).astype(np.int64) + (indices >= offsets[2])
    key = row_of * 3 + block_of
    norms = np.sqrt(np.bincount(key, weights=data * data, minlength=3 * n)).reshape(n, 3)
    norms[norms == 0] = 1.0
    factors = np.asarray(weights) / norms
    data *= factors.reshape(-1)[key]
