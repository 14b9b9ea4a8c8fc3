"""Per-word evaluation of the heads (classifier.linear) against the TF-IDF matrix it stands in for."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from classifier import LabelledReport, ReportText, TrainedModel
from classifier.features import Doc, analyse
from classifier.linear import LinearHeads, WordTable
from classifier.model import MAIN_HEADS, sigmoid, stack

EDGE_CASES = [
    ReportText(id="empty", title="", description=""),
    ReportText(id="punctuation", title="...", description="!! ( ) ;"),
    ReportText(id="negations", title="Ikke", description="ikke ikke ingen uten"),
    ReportText(id="unknown", title="Qzxv", description="xqzv wvxq 12345 zzzzzzzzzzzzzzzzzzzzzzzz"),
    ReportText(id="repeats", title="barnevern barnevern", description="barnevern skole barnevern skole."),
]


def _docs(corpus: list[LabelledReport]) -> list[Doc]:
    return [analyse(r.text) for r in corpus[:300]] + [analyse(r) for r in EDGE_CASES]


@pytest.mark.parametrize("batch", [1, 5, 400])  # below and above the size where a sparse product takes over
def test_heads_equal_the_matrix_product(model: TrainedModel, corpus: list[LabelledReport], batch: int) -> None:
    docs = _docs(corpus)
    parts = [model.heads().evaluate(docs[i: i + batch]) for i in range(0, len(docs), batch)]
    matrix = model.features.transform(docs)
    expected = np.asarray(matrix @ model.weights.astype(np.float64)) + model.intercepts
    heads = len(MAIN_HEADS)
    np.testing.assert_allclose(np.vstack([p.main for p in parts]), expected[:, :heads], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(np.vstack([p.labels for p in parts]), expected[:, heads:], rtol=1e-9, atol=1e-9)
    evaluated = model.heads().evaluate(docs)
    assert evaluated.words[-5] == []  # the empty report: intercepts and meta tokens only
    assert evaluated.words[-1] == ["barnevern", "skole"]  # distinct words, in order


def test_label_heads_with_character_weights(model: TrainedModel, corpus: list[LabelledReport]) -> None:
    # A model whose label heads also weigh n-grams (Config.label_char_ngrams) takes the other path.
    docs = _docs(corpus)
    rng = np.random.default_rng(3)
    weights = rng.normal(size=model.weights.shape)
    heads = LinearHeads(model.features, weights, model.intercepts, len(MAIN_HEADS), labels_use_characters=True)
    expected = np.asarray(model.features.transform(docs) @ weights) + model.intercepts
    evaluated = heads.evaluate(docs)
    np.testing.assert_allclose(np.hstack([evaluated.main, evaluated.labels]), expected, rtol=1e-9, atol=1e-9)


def test_word_contributions_add_up_to_the_character_block(model: TrainedModel, corpus: list[LabelledReport]) -> None:
    docs = _docs(corpus)[:50]
    evaluated = model.heads().evaluate(docs)
    text_part = np.add.reduceat(evaluated.text_main, evaluated.text_starts[:-1], axis=0)
    counts = [len(w) for w in evaluated.words]
    per_report = np.add.reduceat(evaluated.word_sums, np.cumsum([0, *counts[:-1]]), axis=0)
    char_part = per_report * evaluated.char_scales[:, None]
    np.testing.assert_allclose(char_part + text_part + model.intercepts[: len(MAIN_HEADS)], evaluated.main,
                               rtol=1e-9, atol=1e-9)


def test_scores_follow_from_the_heads(model: TrainedModel, corpus: list[LabelledReport]) -> None:
    docs = _docs(corpus)[:40]
    flag, label_p, evaluated = model.scores(docs)
    np.testing.assert_allclose(flag, sigmoid(stack(model.stacker, evaluated.main) + model.prior_shift))
    np.testing.assert_allclose(label_p, sigmoid(evaluated.labels))


def test_explanations_name_words_of_the_report(model: TrainedModel, corpus: list[LabelledReport]) -> None:
    reports = [r.text for r in corpus[:60]]
    for report, prediction in zip(reports, model.predict(reports), strict=True):
        written = f"{report.title} {report.description}".lower()
        assert prediction.explanation, report.id
        for item in prediction.explanation:
            if not item.term.startswith("["):
                assert all(part in written for part in item.term.split(" … ")), (item.term, report.id)


def test_word_table_is_shared_safely_between_threads(model: TrainedModel, corpus: list[LabelledReport]) -> None:
    heads = model.heads()
    table = WordTable(model.features, np.ascontiguousarray(model.weights[: model.features.offsets[1], :2],
                                                          dtype=np.float64))
    words = sorted({w for r in corpus for w in analyse(r.text).words})
    assert len(words) > 1024  # more than the first allocation: the table grows while threads read it
    results: dict[int, list[int]] = {}
    errors: list[BaseException] = []

    def look_up(k: int) -> None:
        try:
            start = k * len(words) // 4
            order = words[start:] + words[:start]  # every word, each thread from another start
            results[k] = table.indices(order)
            for word, index in zip(order, results[k], strict=True):
                assert table.indices([word]) == [index]
        except BaseException as error:  # an assertion in a thread is reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=look_up, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(table) == len(words)
    rows = table.rows(np.array(table.indices(words)))
    reference = heads.table().rows(np.array(heads.table().indices(words)))
    np.testing.assert_allclose(rows, reference[:, :3])


def test_a_full_word_table_is_replaced(model: TrainedModel, monkeypatch: pytest.MonkeyPatch) -> None:
    import classifier.linear as linear

    heads = LinearHeads(model.features, model.weights, model.intercepts, len(MAIN_HEADS),
                        labels_use_characters=False)
    monkeypatch.setattr(linear, "_TABLE_LIMIT", 5)
    first = heads.table()
    first.indices(["barn", "skole", "barnevern", "lege", "tolk", "nav"])
    assert heads.table() is not first
    assert len(heads.table()) == 0
