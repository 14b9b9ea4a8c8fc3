"""Target-group hints from ages, school grades and role words in normalised text.

The hints are features for the target-group model, not final answers: "i 3 år" is a duration,
and a mother can be the patient rather than a parent.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from functools import lru_cache

from classifier.text import tokenize

# group -> words (prefixes at a word start) that suggest it.
_WORDS: dict[str, tuple[str, ...]] = {
    "gravide_og_spedbarn": ("gravid", "svangerskap", "termin", "jordmor", "spedbarn", "nyfødt", "nyfødd",
                            "prematur", "barsel", "fødsel", "fødde", "født", "nybakt", "amming", "sped",
                            "ufødt", "ufødd", "seksukers", "6-ukers"),
    "barn_1_5": ("barnehage", "småbarn", "toåring", "treåring", "fireåring", "femåring", "ettåring",
                 "førskole", "skolestart", "4-årskontroll", "2-årskontroll", "småbarnsavdeling"),
    "barn_6_12": ("barneskole", "barneskule", "småtrinn", "mellomtrinn", "sfo", "aks", "førsteklass",
                  "tiåring", "niåring", "åtteåring", "sjuåring", "seksåring"),
    "ungdom_13_17": ("ungdomsskole", "ungdomsskule", "ungdomstrinn", "tenåring", "videregående",
                     "vidaregåande", "vgs", "lærling", "ungdomsklubb", "fritidsklubb"),
    "unge_voksne_18_25": ("ung voksen", "unge voksne", "ung vaksen", "unge vaksne", "student", "ettervern",
                          "over 18", "fylt 18", "myndig"),
    "foreldre_og_familie": ("foreldre", "forelder", "foresatt", "føresett", "mor", "mora", "moren", "mors", "far",
                            "faren", "fars", "familie", "søsken", "mamma", "pappa", "omsorgsperson", "fosterforeld",
                            "besteforeld", "hjemmet", "heimen", "samvær"),
    "barn_som_parorende": ("barn som pårørende", "barn som pårørande", "barneansvarlig", "barneansvarleg",
                           "pårørende barn", "pårørande born", "pårørande barn", "barna hjemme", "barn hjemme",
                           "barna heime", "har barn", "mindreårige barn", "mindreårige born"),
    "voksne": ("voksen", "vaksen", "voksne", "vaksne", "bruker", "brukar", "pasient", "beboer", "bebuar",
               "innbygger", "innbyggjar", "deltaker", "deltakar", "arbeidstaker"),
    # A child or youth without an age: concerns children, but gives no age band (shared/domain.md). Not a
    # target group code, so it only ever feeds the models.
    "_child": ("barn", "barna", "barnet", "born", "borna", "elev", "eleven", "elevene", "elever", "elevar",
               "elevane", "ungdom", "ungdommen", "ungdommer", "mindreårig", "skolebarn", "skulebarn"),
    "eldre": ("eldre", "sykehjem", "sjukeheim", "hjemmetjeneste", "heimeteneste", "hjemmesykepleie",
              "heimesjukepleie", "pensjonist", "demens", "alders", "beboer", "bebuar"),
}



def _compile_words() -> tuple[re.Pattern[str], re.Pattern[str], frozenset[str]]:
    singles: list[tuple[str, str]] = []
    phrases: list[tuple[str, str]] = []
    for group, words in _WORDS.items():
        for word in sorted(words, key=len, reverse=True):
            # Short words must stand alone: "mor" is not "morgen", "far" is not "farlig".
            pattern = re.escape(word) + ("" if len(word) <= 4 else r"[\w-]*")
            (phrases if " " in word else singles).append((group, pattern))
    single = re.compile("|".join(f"(?P<{g}>{p})" for g, p in _unique_groups(singles)))
    phrase = re.compile("|".join(f"(?P<{g}>{p})" for g, p in _unique_groups(phrases)))
    starts = frozenset(w.split(" ")[0] for ws in _WORDS.values() for w in ws if " " in w)
    return single, phrase, starts


def _unique_groups(items: list[tuple[str, str]]) -> list[tuple[str, str]]:
    # One named group per target group: alternatives of the same group are joined.
    joined: dict[str, list[str]] = {}
    for group, pattern in items:
        joined.setdefault(group, []).append(pattern)
    return [(g, "(?:" + "|".join(ps) + ")") for g, ps in joined.items()]


_SINGLE, _PHRASE, PHRASE_STARTS = _compile_words()
# Every phrase pattern is an escaped word list entry, so a match starts with one of these words.
PHRASE_PREFIXES = tuple(sorted(w for ws in _WORDS.values() for w in ws if " " in w))
_DIGIT = re.compile(r"\d")


@lru_cache(maxsize=100_000)
def word_hint(word: str) -> str | None:
    """The target group a single word suggests ("barnehagen" -> barn_1_5), if any."""
    match = _SINGLE.fullmatch(word)
    return match.lastgroup if match else None

def age_group(age: int) -> str:
    """The target group of a person of this age in years."""
    if age < 1:
        return "gravide_og_spedbarn"
    if age <= 5:
        return "barn_1_5"
    if age <= 12:
        return "barn_6_12"
    if age <= 17:
        return "ungdom_13_17"
    if age <= 25:
        return "unge_voksne_18_25"
    if age < 67:
        return "voksne"
    return "eldre"


def grade_group(grade: int) -> str | None:
    """The target group of a pupil in this school grade (1-10), or None for other numbers."""
    if 1 <= grade <= 7:
        return "barn_6_12"
    if 8 <= grade <= 10:
        return "ungdom_13_17"
    return None


def phrase_hint(text: str, start: int) -> str | None:
    """The target group a multi-word phrase starting at `start` suggests, if any."""
    match = _PHRASE.match(text, start)
    return match.lastgroup if match else None


def numeric_hints(text: str) -> list[str]:
    """Hint tokens from ages, grades and infant ages written with digits in normalised text."""
    return numeric_hints_in_tokens(tokenize(text)) if _DIGIT.search(text) else []


def numeric_hints_in_tokens(tokens: Sequence[str]) -> list[str]:
    """As numeric_hints, on the tokens of text.tokenize ("gutt på 7 år", "8. trinn", "3 mnd gammel")."""
    hints: list[str] = []
    n = len(tokens)
    # map and compress scan the tokens in C: this runs for every report that has a digit anywhere.
    # isdecimal, not isdigit: "²" and "፩" are digits that int() refuses, so a report holding one and a
    # number could not be scored.
    for i in [i for i in itertools.compress(itertools.count(), map(str.isdecimal, tokens)) if len(tokens[i]) <= 2]:
        value = int(tokens[i])
        after = tokens[i + 1] if i + 1 < n else ""
        after2 = tokens[i + 2] if i + 2 < n else ""
        before = tokens[i - 1] if i else ""
        if before in ("på", "(") and i > 1:
            before = tokens[i - 2]
        if after == "." and after2.startswith(("klasse", "trinn", "årstrinn")):
            group = grade_group(value)
            if group:
                hints.append("grade:" + group)
        elif before == "vg" and value in (1, 2, 3):
            hints.append("grade:ungdom_13_17")
        elif after in _INFANT_UNITS and after2 not in _NOT_AN_AGE:
            hints.append("age:gravide_og_spedbarn")
        elif (after.startswith(("år", "åring")) and after in _AGE_WORDS) or (before in _PERSONS and after != "."):
            hints.append("age:" + age_group(value))
    return hints


_INFANT_UNITS = frozenset({"uker", "veker", "veke", "uke", "mnd", "måneder", "månader", "måned", "månad", "dager",
                           "dagar", "døgn"})
_NOT_AN_AGE = frozenset({"siden", "sidan", "etter", "før", "seinare", "senere", "seinere", "til", "på", "i", "har",
                         "hadde", "for", "med"})
_AGE_WORDS = frozenset({"år", "års", "åring", "åringen", "åringar", "åringer", "åringane", "åringene", "årsalder"})
_PERSONS = frozenset(
    stem + suffix
    for stem in ("gutt", "gut", "jente", "jent", "barn", "elev", "ungdom", "kvinne", "kvinn", "mann", "mor", "far",
                 "pasient", "bruker", "brukar", "pike", "sønn", "son", "datter", "dotter", "deltaker", "deltakar",
                 "beboer", "bebuar", "ungdomm", "sønnen", "dotter")
    for suffix in ("", "en", "a", "et", "n", "e")
)
