"""Words and phrases of collaboration as a system, of parties named in the abstract, and of one service's capacity.

Supervision findings and experienced staff write collaboration failures as a system ("the services each did
their own part", "no agreed routine for cooperating with the GPs") without naming two services or one missed
message; and one service's waiting list or hours granted mentions another party without being collaboration.
These cues become meta tokens (`cue:<concept>`) that the model weighs, so that it can learn both from few
examples; bokmål and nynorsk forms, matched on normalised text at a word start.
"""

from __future__ import annotations

import re
from functools import lru_cache

# concept -> whole-word patterns (a trailing \w* lets inflections and compounds through).
WORDS: dict[str, tuple[str, ...]] = {
    "coordination": (r"koordiner(?!ende|ande)\w*", r"samordn\w*", r"helhetlig\w*", r"heilskapleg\w*", r"parallell\w*",
                     r"helhet", r"heilskap"),
    "plan": (r"ip", r"barnekoordinator\w*", r"koordinator\w*", r"ansvarsgrupp\w*", r"ansvarsgruppemøt\w*"),
    "routine": (r"samarbeidsavtal\w*", r"tjenesteavtal\w*", r"tenesteavtal\w*", r"samarbeidsrutin\w*",
                r"samhandlingsrutin\w*", r"samhandlingsavtal\w*", r"rutinebeskrivels\w*"),
    "joint_work": (r"tverrfagl\w*", r"tverretat\w*", r"tverrsektor\w*", r"samarbeidsmøt\w*", r"nettverksmøt\w*",
                   r"samhandlingsmøt\w*", r"samarbeidsforum\w*", r"samarbeidsarena\w*"),
    "confidentiality": (r"taushetsplikt\w*", r"teieplikt\w*", r"samtykke\w*", r"samtykkj\w*", r"opplysningsplikt\w*",
                        r"meldeplikt\w*", r"informasjonsplikt\w*"),
    "exchange": (r"informasjonsutveksling\w*", r"informasjonsflyt\w*", r"overlevering\w*", r"overføring\w*",
                 r"overgang\w*", r"henvis\w*", r"tilvis\w*"),
    "parties": (r"tjenestene", r"tenestene", r"etatene", r"etatane", r"instansene", r"instansane", r"hverandre",
                r"kvarandre", r"hverandres", r"kvarandres", r"aktørene", r"aktørane", r"partene", r"partane",
                r"enhetene", r"einingane", r"samarbeidspartner\w*", r"samarbeidspartnar\w*", r"sektorene",
                r"sektorane", r"fagmiljøene", r"fagmiljøa"),
    "capacity": (r"ventetid\w*", r"ventelist\w*", r"kapasitet\w*", r"bemanning\w*", r"underbemann\w*", r"vakans\w*",
                 r"sykefravær\w*", r"sjukefråvær\w*", r"ressursmangel\w*", r"budsjett\w*", r"innvilg\w*",
                 r"avslag\w*", r"nedskjær\w*", r"timetall\w*", r"oppsigels\w*", r"sykmeld\w*", r"sjukmeld\w*"),
}
# concept -> phrases; each starts with a literal word and a space (the phrase search needs that prefix).
PHRASES: dict[str, tuple[str, ...]] = {
    "coordination": (r"på tvers\b", r"hver for seg", r"kvar for seg", r"hver sin del", r"kvar sin del",
                     r"sin egen del", r"sin eigen del", r"henger ikke sammen", r"heng ikkje saman",
                     r"hang ikke sammen", r"hekk ikkje saman", r"samlet tilbud", r"samla tilbod"),
    "plan": (r"individuell plan\w*", r"individuelle planer", r"individuelle planar"),
    "routine": (r"rutine for samarbeid\w*", r"rutinen for samarbeid\w*", r"rutiner for samarbeid\w*",
                r"rutinar for samarbeid\w*", r"rutine for samhandling", r"rutiner for samhandling",
                r"ingen avklart rutine",
                r"ingen felles rutine", r"ingen rutine", r"inga rutine", r"ingen skriftlig rutine",
                r"ingen faste rutiner", r"ingen avtale", r"inga avtale"),
    "shared_understanding": (r"felles forståelse", r"felles forståing", r"felles plan\w*", r"felles mål",
                             r"ulik forståelse", r"ulik forståing", r"ulike forståelser", r"forskjellig forståelse",
                             r"ulik oppfatning", r"ulike oppfatninger", r"ulik praksis"),
    "responsibility": (r"hvem som har ansvar\w*", r"kven som har ansvar\w*", r"hvem som gjør hva", r"kven som gjer kva",
                       r"hvem som skal\b", r"kven som skal\b", r"den andres ansvar", r"den andre sitt ansvar",
                       r"ingen tok ansvar\w*", r"ingen tok ansvaret", r"mellom to stoler", r"falt mellom",
                       r"fall mellom", r"uklar ansvarsfordeling", r"uklart ansvar", r"uklar ansvar\w*",
                       r"ansvaret er uklart"),
    "parties": (r"andre tjenester", r"andre tenester", r"flere tjenester", r"fleire tenester", r"ulike tjenester",
                r"ulike tenester", r"flere etater", r"fleire etatar", r"ulike etater", r"ulike etatar"),
    "capacity": (r"timer innvilget", r"timar innvilga", r"færre timer", r"færre timar", r"fikk innvilget",
                 r"fekk innvilga", r"lang ventetid", r"lange ventelister"),
}
# Concepts that describe collaboration as a system: one shared token too, so that a rare one is learnt with
# the common ones.
COORDINATION = frozenset({"coordination", "plan", "routine", "joint_work", "shared_understanding", "responsibility"})


def _compile() -> tuple[re.Pattern[str], re.Pattern[str]]:
    words = re.compile("|".join(f"(?P<{c}>{'|'.join(ps)})" for c, ps in WORDS.items()))
    phrases = re.compile("|".join(f"(?P<{c}>{'|'.join(ps)})" for c, ps in PHRASES.items()))
    return words, phrases


_WORD, _PHRASE = _compile()
PHRASE_PREFIXES = tuple(sorted({p.split(" ")[0] + " " + re.split(r"[\\(\[]", p.split(" ", 1)[1])[0]
                                for ps in PHRASES.values() for p in ps}))
PHRASE_STARTS = frozenset(p.split(" ")[0] for p in PHRASE_PREFIXES)


@lru_cache(maxsize=100_000)
def word_cue(word: str) -> str | None:
    """The concept a single word is a cue of ("ansvarsgruppe" -> plan), if any."""
    match = _WORD.fullmatch(word)
    return match.lastgroup if match else None


def phrase_cue(text: str, start: int) -> str | None:
    """The concept of a phrase starting at `start` of normalised text ("på tvers" -> coordination), if any."""
    match = _PHRASE.match(text, start)
    return match.lastgroup if match else None
