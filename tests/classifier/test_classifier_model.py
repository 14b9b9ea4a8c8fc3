"""The trained model: determinism, predictions, bokmål/nynorsk agreement, empty text, metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from classifier import LabelledReport, Prediction, ReportText, TrainedModel, evaluate, train
from classifier.taxonomy import SERVICES, TARGET_GROUPS

# The same report written in bokmål and in nynorsk (our own wording, not from any data set).
PAIRS = [
    (
        ReportText("nb1", "Skolen fikk ikke beskjed om ny elev",
                   "En gutt på 8 år begynte hos oss mandag. Barnevernet hadde flyttet ham til fosterhjem i "
                   "kommunen, men ingen ga skolen eller helsesykepleier beskjed. Vi fikk vite det av "
                   "fostermor.", "Mangler ved kommunikasjon/informasjon", "Etat for skole – Eksempel skole"),
        ReportText("nn1", "Skulen fekk ikkje beskjed om ny elev",
                   "Ein gut på 8 år byrja hjå oss måndag. Barnevernet hadde flytta han til fosterheim i "
                   "kommunen, men ingen gav skulen eller helsesjukepleiar beskjed. Vi fekk vite det frå "
                   "fostermor.", "Mangler ved kommunikasjon/informasjon", "Etat for skole – Eksempel skule"),
    ),
    (
        ReportText("nb2", "Ingen epikrise til helsestasjonen",
                   "Premature tvillinger ble skrevet ut fra sykehuset for to uker siden. Helsestasjonen har "
                   "ikke fått epikrise eller melding, og mor har ikke fått tilbud om hjemmebesøk.",
                   "Informasjonsplikt", "Etat for barn og familie – Helsestasjon Eksempel"),
        ReportText("nn2", "Inga epikrise til helsestasjonen",
                   "Premature tvillingar vart skrivne ut frå sjukehuset for to veker sidan. Helsestasjonen har "
                   "ikkje fått epikrise eller melding, og mor har ikkje fått tilbod om heimebesøk.",
                   "Informasjonsplikt", "Etat for barn og familie – Helsestasjon Eksempel"),
    ),
    (
        ReportText("nb3", "Fall fra klatrestativ",
                   "Jente 4 år falt fra klatrestativet i barnehagen og slo kneet. Plaster satt på, foreldrene "
                   "ble informert ved henting.", "Pasient-/brukerskade", "Etat for barnehage – Eksempel barnehage"),
        ReportText("nn3", "Fall frå klatrestativ",
                   "Jente 4 år fall frå klatrestativet i barnehagen og slo kneet. Plaster sett på, foreldra "
                   "vart informerte ved henting.", "Pasient-/brukerskade", "Etat for barnehage – Eksempel barnehage"),
    ),
    (
        ReportText("nb4", "Nettverket nede",
                   "Nettverket på kontoret var nede i en time i formiddag. Vi fikk ikke logget inn i "
                   "fagsystemet. Det virket igjen etter lunsj.", "IKT", "Etat for sosiale tjenester – NAV Eksempel"),
        ReportText("nn4", "Nettverket nede",
                   "Nettverket på kontoret var nede i ein time i formiddag. Vi fekk ikkje logga inn i "
                   "fagsystemet. Det verka igjen etter lunsj.", "IKT", "Etat for sosiale tjenester – NAV Eksempel"),
    ),
    (
        ReportText("nb5", "Ansvarsgruppemøte uten PPT",
                   "Det var avtalt ansvarsgruppemøte for en elev på 6. trinn. PPT møtte ikke og ga ingen "
                   "beskjed. Tiltakene kunne ikke vedtas, og mor måtte ta fri fra jobb en gang til.",
                   "Relasjon/samarbeid", "Etat for skole – Eksempel skole"),
        ReportText("nn5", "Ansvarsgruppemøte utan PPT",
                   "Det var avtalt ansvarsgruppemøte for ein elev på 6. trinn. PPT møtte ikkje og gav inga "
                   "beskjed. Tiltaka kunne ikkje vedtakast, og mor måtte ta fri frå jobb ein gong til.",
                   "Relasjon/samarbeid", "Etat for skole – Eksempel skule"),
    ),
]


def test_training_is_deterministic(small_corpus: list[LabelledReport]) -> None:
    first = train(small_corpus, seed=0)
    second = train(list(reversed(small_corpus)), seed=0)  # record order must not matter either
    texts = [r.text for r in small_corpus[:50]]
    assert first.threshold == second.threshold
    assert first.training_data_hash == second.training_data_hash
    assert np.array_equal(first.weights, second.weights)
    assert [p.to_dict() for p in first.predict(texts)] == [p.to_dict() for p in second.predict(texts)]


def test_predict_returns_one_prediction_per_report(model: TrainedModel, corpus: list[LabelledReport]) -> None:
    reports = [r.text for r in corpus[:40]]
    predictions = model.predict(reports)
    assert [p.id for p in predictions] == [r.id for r in reports]
    for p in predictions:
        assert isinstance(p, Prediction)
        assert 0.0 <= p.score <= 1.0
        assert p.flagged == (p.score >= model.threshold)
        assert set(p.target_groups) <= set(TARGET_GROUPS)
        assert set(p.services) <= set(SERVICES)
        assert p.model_version == model.version
        assert all(isinstance(e.term, str) and isinstance(e.weight, float) for e in p.explanation)
    assert model.predict([]) == []


def test_threshold_can_be_overridden(model: TrainedModel, corpus: list[LabelledReport]) -> None:
    reports = [r.text for r in corpus[:20]]
    assert all(p.flagged for p in model.predict(reports, threshold=0.0))
    assert not any(p.flagged for p in model.predict(reports, threshold=1.01))


def test_clear_cases(model: TrainedModel) -> None:
    positive, *_ = model.predict([PAIRS[0][0]])
    negative, *_ = model.predict([PAIRS[2][0]])
    assert positive.flagged and not negative.flagged
    assert "barnevern" in positive.services and "skole" in positive.services
    assert "barn_6_12" in positive.target_groups
    assert "barn_1_5" in negative.target_groups
    assert positive.explanation and positive.explanation[0].weight > 0


@pytest.mark.parametrize(("bokmal", "nynorsk"), PAIRS, ids=[nb.id for nb, _ in PAIRS])
def test_bokmal_and_nynorsk_versions_score_alike(model: TrainedModel, bokmal: ReportText, nynorsk: ReportText) -> None:
    nb, nn = model.predict([bokmal, nynorsk])
    assert nb.flagged == nn.flagged
    assert abs(nb.score - nn.score) < 0.15
    assert set(nb.services) == set(nn.services)


@pytest.mark.parametrize(("title", "description"), [("", ""), ("   ", "\n\t "), ("Avvik", "")])
def test_empty_or_whitespace_text(model: TrainedModel, title: str, description: str) -> None:
    prediction, = model.predict([ReportText("e", title, description)])
    assert math.isfinite(prediction.score) and 0.0 <= prediction.score <= 1.0
    assert not prediction.flagged


def test_single_report_matches_batch(model: TrainedModel, corpus: list[LabelledReport]) -> None:
    reports = [r.text for r in corpus[:10]]
    batch = [p.score for p in model.predict(reports)]
    single = [model.predict([r])[0].score for r in reports]
    assert batch == pytest.approx(single, abs=1e-9)


def test_evaluate_reports_every_metric(model: TrainedModel, small_corpus: list[LabelledReport]) -> None:
    report = evaluate(model, small_corpus)
    flag = report["samhandling_barn_unge"]
    for key in ("precision", "recall", "f1", "roc_auc", "confusion", "precision_at_prevalence", "recall_at_prevalence"):
        assert key in flag
    assert {"micro_f1", "macro_f1"} <= report["target_groups"].keys() <= report["services"].keys() | {"per_label"}
    assert "samhandling_barn_unge" in report["baseline"]
    assert {"bokmal", "nynorsk"} <= report["slices"].keys()


def test_model_metadata(model: TrainedModel) -> None:
    assert model.version.startswith("20") and len(model.training_data_hash) == 64
    assert 0.0 < model.threshold < 1.0
    assert model.metrics["cv"]["scheme"] == "leave-one-theme-out"
    assert "precision >=" in model.metrics["threshold_target"]
