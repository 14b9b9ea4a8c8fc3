"""A report's score does not move when only what is irrelevant to the question changes (issues 13 and 17).

Dates, months, weekdays, numbers, names of units and redaction markers are dropped before the features;
abbreviations of services are written out; nynorsk is mapped to bokmål. Every report here is our own
wording, written for these tests.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from classifier import ReportText, TrainedModel

TOLERANCE = 0.02

# Reports with slots for what must not matter: {date}, {month}, {day}, {n}, {unit}, {marker}.
TEMPLATES = [
    ("Skolen fikk ikke beskjed om ny elev",
     "Den {date} begynte en gutt på 9 år hos oss. Barnevernet hadde plassert ham i fosterhjem i {month}, men "
     "ingen ga skolen eller helsesykepleier beskjed før {day}. Fostermor ringte oss fra {marker}. "
     "Vi har {n} elever i klassen."),
    ("Ingen epikrise etter fødsel",
     "Tvillinger født {date} ble skrevet ut fra sykehuset. Helsestasjon {unit} har ikke fått epikrise, og "
     "mor har ikke fått tilbud om hjemmebesøk. Ringte avdelingen {day} {month}, ingen svar. Mor: {marker}."),
    ("Fall i barnehagen",
     "Jente 4 år falt fra klatrestativet i {unit} barnehage {day} {date} og slo kneet. Foreldrene ble "
     "informert ved henting kl {n}. {marker}"),
    ("Nettverket nede",
     "Nettet på {unit} skole var nede fra kl {n} {day} {date}. Ingen elever berørt. Meldt til IT {month}."),
    ("Pasient utskrevet uten beskjed",
     "Mann 78 år ble skrevet ut fra sykehuset {day} {date} uten at hjemmesykepleien i {unit} fikk beskjed. "
     "Datter ringte {marker} i {month}. Han hadde {n} tabletter igjen."),
    ("Ingen felles plan",
     "Eleven får tiltak fra både skolen, PPT og BUP, men tjenestene har ikke snakket sammen siden {month}. "
     "Det finnes ingen individuell plan og ingen vet hvem som har ansvaret. Møte avlyst {day} {date}, "
     "foreldre kontaktet {marker}. {n} møter er avlyst i {unit}."),
]
SLOTS = {
    "date": ["3. mars", "14.11.2025", "28/02", "1. januar 2026", "den 20. september"],
    "month": ["januar", "september", "mai", "desember", "oktober"],
    "day": ["mandag", "fredag", "onsdag", "søndag", "torsdag"],
    "n": ["2", "14", "30", "7", "112"],
    "unit": ["Åsane", "Fana", "Laksevåg", "Arna", "Ytrebygda"],
    "marker": ["[fødselsnummer]", "[telefonnummer]", "[e-post]", "", "[fødselsnummer] [e-post]"],
}


def _variants(title: str, description: str) -> list[ReportText]:
    out = []
    for k in range(len(SLOTS["date"])):
        values = {slot: options[k] for slot, options in SLOTS.items()}
        out.append(ReportText(f"v{k}", title, description.format(**values)))
    return out


@pytest.mark.parametrize(("title", "description"), TEMPLATES, ids=[t for t, _ in TEMPLATES])
def test_score_ignores_dates_months_numbers_units_and_markers(
    model: TrainedModel, title: str, description: str
) -> None:
    scores = [p.score for p in model.predict(_variants(title, description))]
    assert max(scores) - min(scores) <= TOLERANCE, scores


def test_redaction_marker_alone_is_neutral(model: TrainedModel) -> None:
    """Appending a marker to an adult's case used to raise its score 20-60 fold (issue 13 §6)."""
    base = ReportText("a", "Utskrivning uten melding", "Kvinne 54 år ble skrevet ut fra sykehuset uten at "
                                                       "hjemmesykepleien fikk beskjed.")
    marked = ReportText("b", base.title, base.description + " [fødselsnummer] [telefonnummer] [e-post]")
    first, second = model.predict([base, marked])
    assert second.score == pytest.approx(first.score, abs=1e-9)
    assert not any("fødselsnummer" in e.term or "e-post" in e.term for e in second.explanation)


def test_months_and_numbers_are_not_explanations(model: TrainedModel) -> None:
    report = ReportText("m", "Beskjed kom ikke fram i januar",
                        "Den 12. september 2025 sendte barnehagen bekymringsmelding. Barnevernet svarte ikke før "
                        "i januar, 4 måneder senere, fredag 14.01.")
    terms = {e.term for e in model.predict([report])[0].explanation}
    assert not terms & {"januar", "september", "2025", "12", "14", "fredag", "4"}, terms


# The same report in bokmål and in nynorsk.
NYNORSK_PAIRS = [
    ("Barnehagen sendte bekymringsmelding til barnevernet i høst, men har ikke fått noen tilbakemelding. "
     "Styreren har ringt flere ganger uten svar.",
     "Barnehagen sende bekymringsmelding til barnevernet i haust, men har ikkje fått nokon tilbakemelding. "
     "Styraren har ringt fleire gonger utan svar."),
    ("Eleven begynte på skolen etter flytting, men skolehelsetjenesten fikk ikke vite det. "
     "Helsesykepleier oppdaget det tilfeldig.",
     "Eleven byrja på skulen etter flytting, men skulehelsetenesta fekk ikkje vite det. "
     "Helsesjukepleiaren oppdaga det tilfeldig."),
    ("Gutt på 14 år skulle møte hos BUP, men henvisningen fra fastlegen kom aldri fram.",
     "Gut på 14 år skulle møte hjå BUP, men tilvisinga frå fastlegen kom aldri fram."),
    ("Ansvarsgruppemøtet ble avlyst fordi ingen fra NAV møtte, og familien fikk ikke beskjed.",
     "Ansvarsgruppemøtet vart avlyst fordi ingen frå NAV møtte, og familien fekk ikkje beskjed."),
    ("Jente 3 år falt i sandkassen og fikk en skramme på kinnet. Foreldrene ble informert.",
     "Jente 3 år fall i sandkassa og fekk ei skramme på kinnet. Foreldra vart informerte."),
    ("Tjenestene har ingen felles forståelse av hva barnet trenger, og hver tjeneste gjør sin egen del.",
     "Tenestene har inga felles forståing av kva barnet treng, og kvar teneste gjer sin eigen del."),
    ("Sykehuset sendte ikke epikrise til helsestasjonen etter at den nyfødte ble skrevet ut.",
     "Sjukehuset sende ikkje epikrise til helsestasjonen etter at den nyfødde vart skriven ut."),
    ("Nettverket på skolen var nede i en time. Ingen elever ble berørt.",
     "Nettverket på skulen var nede i ein time. Ingen elevar vart råka."),
]

ABBREVIATION_PAIRS = [
    ("BV ga ikke tilbakemelding til bhg etter bekymringsmeldingen.",
     "Barnevernet ga ikke tilbakemelding til barnehagen etter bekymringsmeldingen."),
    ("hfs fikk ikke vite at eleven hadde flyttet, og BV sendte ingen melding.",
     "helsesykepleier fikk ikke vite at eleven hadde flyttet, og barnevernet sendte ingen melding."),
    ("KE har ikke oppnevnt koordinator selv om familien søkte for lenge siden.",
     "Koordinerende enhet har ikke oppnevnt koordinator selv om familien søkte for lenge siden."),
    ("Gutt 5 år i bhg. Foreldre ba om IP, men KE og bhg sier det er den andres ansvar.",
     "Gutt 5 år i barnehagen. Foreldre ba om individuell plan, men koordinerende enhet og barnehagen sier det "
     "er den andres ansvar."),
]


def _score_pairs(model: TrainedModel, pairs: list[tuple[str, str]]) -> np.ndarray:
    reports = [ReportText(f"{i}{side}", "", text) for i, pair in enumerate(pairs) for side, text in zip("ab", pair,
                                                                                                        strict=True)]
    scores = np.array([p.score for p in model.predict(reports)])
    return np.abs(scores[0::2] - scores[1::2])


def test_nynorsk_scores_as_bokmal(model: TrainedModel) -> None:
    moved = _score_pairs(model, NYNORSK_PAIRS)
    assert moved.max() <= TOLERANCE, moved.round(3).tolist()


def test_abbreviations_score_as_full_names(model: TrainedModel) -> None:
    moved = _score_pairs(model, ABBREVIATION_PAIRS)
    assert moved.max() <= TOLERANCE, moved.round(3).tolist()


def typos(text: str, rng: random.Random, rate: float = 0.05) -> str:
    """Text with a share of its longer words misspelt: two letters swapped, one dropped or one doubled."""
    words = text.split(" ")
    for i, word in enumerate(words):
        letters = [k for k, c in enumerate(word) if c.isalpha()]
        if len(letters) < 4 or rng.random() >= rate:
            continue
        k = rng.choice(letters[1:-1])
        kind = rng.choice(("swap", "drop", "double"))
        if kind == "swap" and k + 1 < len(word) and word[k + 1].isalpha():
            word = word[:k] + word[k + 1] + word[k] + word[k + 2:]
        elif kind == "drop":
            word = word[:k] + word[k + 1:]
        else:
            word = word[:k] + word[k] + word[k:]
        words[i] = word
    return " ".join(words)


def test_typos_move_few_scores(model: TrainedModel, corpus: list) -> None:
    """One word in twenty misspelt: the median score moves by at most 0.02 and 95 % of flags stay as they were.

    A per-report bound of 0.02 is not realistic here: a typo in the one word that carries a report
    ("beskjed" -> "bekjsed") rightly weakens its evidence, and reports near the threshold move most.
    """
    rng = random.Random(17)
    sample = [r for i, r in enumerate(sorted(corpus, key=lambda r: r.id)) if i % 8 == 0]
    clean = model.predict([r.text for r in sample], explain=False)
    noisy = model.predict([ReportText(r.id, typos(r.title, rng), typos(r.description, rng), r.reported_category,
                                      r.reporting_unit) for r in sample], explain=False)
    moved = np.abs(np.array([a.score - b.score for a, b in zip(clean, noisy, strict=True)]))
    same_flag = np.mean([a.flagged == b.flagged for a, b in zip(clean, noisy, strict=True)])
    assert np.median(moved) <= TOLERANCE, np.median(moved)
    assert same_flag >= 0.95, same_flag


def test_a_joint_meeting_is_not_evidence_against_a_failed_one(model: TrainedModel) -> None:
    """`samarbeidsmøte` counted against clear positives (−1.8), because the hand-written corpus used it mostly
    in praise of good meetings (issue 13 §6): a failure at a joint meeting scores as a failure at a meeting."""
    joint = ReportText("j", "NAV møtte ikke på samarbeidsmøtet",
                       "Skolen kalte inn til samarbeidsmøte om elev på 5. trinn. NAV hadde sagt ja, men kom ikke, og "
                       "familien fikk ikke avklart økonomien.")
    plain = ReportText("p", "NAV møtte ikke på møtet", joint.description.replace("samarbeidsmøte", "møte"))
    with_word, without = model.predict([joint, plain])
    assert with_word.flagged and with_word.score >= without.score - 0.15, (with_word.score, without.score)
    assert not any("samarbeidsmøte" in e.term and e.weight < -0.5 for e in with_word.explanation)
