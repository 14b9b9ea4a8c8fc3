"""Pure text handling: normalising, negation, nynorsk, gazetteer, age rules, language guess."""

from __future__ import annotations

import pytest

from classifier import gazetteer, rules
from classifier.evaluate import keyword_baseline
from classifier.features import analyse
from classifier.gazetteer import ALIASES, find_services
from classifier.records import ReportText
from classifier.text import language, normalise, normalised_chunks, to_bokmal


def _word_features(text: str) -> list[str]:
    """The word features the model reads of a report with this description: unigrams, then bigrams."""
    doc = analyse(ReportText("x", "", text))
    return doc.unigrams + doc.bigrams


def _hints(text: str) -> list[str]:
    """The target-group hint tokens the model reads of a report with this description."""
    return [token for token in analyse(ReportText("x", "", text)).meta if token.startswith(("age:", "grade:", "word:"))]


def test_negation_marks_the_following_words_of_the_clause() -> None:
    features = _word_features("Skolen ga ikke beskjed til BUP. Mor ringte.")
    assert "neg_beskjed" in features
    assert "ikke neg_beskjed" in features
    assert "mor" in features  # the full stop ends the negation


@pytest.mark.parametrize(("nynorsk", "bokmal"), [
    ("ikkje", "ikke"), ("skulen", "skolen"), ("fekk", "fikk"), ("helsesjukepleiaren", "helsesykepleieren"),
    ("skulehelsetenesta", "skolehelsetjenesten"), ("inga", "ingen"),
])
def test_nynorsk_forms_map_to_bokmal(nynorsk: str, bokmal: str) -> None:
    assert to_bokmal(nynorsk) == bokmal


def test_nynorsk_negation_is_marked_like_bokmal() -> None:
    nn = _word_features("Skulen fekk ikkje beskjed")
    nb = _word_features("Skolen fikk ikke beskjed")
    assert nn == nb


@pytest.mark.parametrize(("text", "service"), [
    ("Meldte til BV i går", "barnevern"), ("barnevernstjenesten svarte ikke", "barnevern"),
    ("henvist til PPT", "ppt"), ("venteliste hos BUP", "bup"), ("fastlegen sendte", "fastlege"),
    ("legevakta ringde", "legevakt"), ("SFO/AKS fikk ikke vite", "sfo"), ("NAV-kontoret", "nav"),
    ("e-melding til feil mottaker", "it_system"), ("koordinerende enhet har saken", "koordinerende_enhet"),
    ("skulehelsetenesta", "skolehelsetjeneste"), ("helsesykepleier på skolen", "skolehelsetjeneste"),
])
def test_gazetteer_finds_names_abbreviations_and_variants(text: str, service: str) -> None:
    assert service in {s for s, _ in find_services(normalise(text))}


@pytest.mark.parametrize("text", ["navnet hans", "maten ble servert", "lar være", "apparatet", "i morgen"])
def test_gazetteer_ignores_lookalike_words(text: str) -> None:
    assert not [s for s, _ in find_services(normalise(text)) if not s.startswith("_")]


@pytest.mark.parametrize(("text", "hint"), [
    ("gutt på 7 år", "age:barn_6_12"), ("14-åringen", "age:ungdom_13_17"), ("elev i 2. klasse", "grade:barn_6_12"),
    ("eleven på 9. trinn", "grade:ungdom_13_17"), ("jente (4 år)", "age:barn_1_5"),
    ("barnet, 3 mnd gammel", "age:gravide_og_spedbarn"), ("kvinne 41", "age:voksne"),
    ("gravid i uke 30", "word:gravide_og_spedbarn"), ("foreldrene ringte", "word:foreldre_og_familie"),
    ("barn som pårørende", "word:barn_som_parorende"),
])
def test_group_hints(text: str, hint: str) -> None:
    assert hint in _hints(text)


def test_dates_and_durations_are_not_ages() -> None:
    assert _hints("møte 12.03 kl 14, for 3 uker siden") == []


def test_language_guess() -> None:
    assert language("Skulen fekk ikkje beskjed frå barnevernet om at eleven var flytta.") == "nn"
    assert language("Skolen fikk ikke beskjed fra barnevernet om at eleven var flyttet.") == "nb"


@pytest.mark.parametrize("text", ["", "   ", "\n\t", None])
def test_analyse_handles_empty_text(text: str | None) -> None:
    doc = analyse(ReportText("x", text, text))  # type: ignore[arg-type]
    assert doc.words == [] and doc.unigrams == []


def test_keyword_baseline_is_the_advisers_search() -> None:
    assert keyword_baseline("Manglende informasjon", "om barnet")
    assert keyword_baseline("", "SAMARBEIDET med eleven")
    assert not keyword_baseline("Manglende informasjon", "om pasienten")


@pytest.mark.parametrize("text", ["  Skolen\u00adsvarte\tIKKE \n på ﬁre ", "Ｎａｖ-kontoret (BUP).", "", None])
def test_normalised_chunks_are_the_words_of_normalise(text: str | None) -> None:
    chunks = normalised_chunks(text)
    assert " ".join(chunks) == normalise(text)
    assert all(chunk and " " not in chunk for chunk in chunks)


def test_normalised_chunks_fold_case_width_and_soft_hyphens() -> None:
    assert normalised_chunks("Skolen\u00adsvarte  IKKE ﬁre") == ["skolensvarte", "ikke", "fire"]


def test_every_phrase_pattern_starts_with_a_plain_text_phrase_prefix() -> None:
    # analyse runs the phrase regexes only where one of these prefixes occurs in the text.
    for pattern in [p for ps in ALIASES.values() for p in ps if " " in p]:
        assert any(pattern.startswith(prefix) and " " in prefix for prefix in gazetteer.PHRASE_PREFIXES), pattern
    assert not any(set(prefix) & set("\\.^$*+?{}[]|()") for prefix in gazetteer.PHRASE_PREFIXES)
    assert all(rules._PHRASE.fullmatch(prefix) for prefix in rules.PHRASE_PREFIXES)


@pytest.mark.parametrize(("pattern", "prefix"), [
    (r"pedagogisk leder\w*", "pedagogisk leder"), ("lagt inn", "lagt inn"), (r"skule[n]?\b", "skule"),
    (r"sfo?x", "sf"), (r"tolk(?:en|er)?\b", ""),
])
def test_literal_prefix_stops_before_the_first_regex_operator(pattern: str, prefix: str) -> None:
    assert gazetteer._literal_prefix(pattern) == prefix


@pytest.mark.parametrize(("description", "token"), [
    ("Den andre gangen ringte den offentlige tannhelsetjenesten.", "svc:tannhelse"),
    ("Hun har det bra. Mor har barn hjemme.", "word:barn_som_parorende"),
    ("Han var over 18 år, over 18", "word:unge_voksne_18_25"),
    ("(psykisk helse og rus) svarte ikke", "svc:psykisk_helse_rus"),
])
def test_analyse_finds_a_phrase_after_plain_uses_of_its_first_word(description: str, token: str) -> None:
    assert token in analyse(ReportText("x", "", description)).meta


@pytest.mark.parametrize("description", ["Gutten på 7 år bor i 40 m ² stor leilighet.", "Jenta (፩) er 7 år.",
                                         "Elev i ³ 8. klasse"])
def test_digits_int_refuses_are_not_read_as_numbers(description: str) -> None:
    doc = analyse(ReportText(id="x", title="Bekymring", description=description))
    assert any(token.startswith(("age:", "grade:")) for token in doc.meta)
