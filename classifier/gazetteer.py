"""Service names, abbreviations and spelling variants (bokmål and nynorsk) found in normalised text.

Each alias names one service. A hit becomes a feature the service model weighs, not a verdict:
"HS" or "jordmor" do not always mean what they usually mean.
"""

from __future__ import annotations

import re
from functools import lru_cache

# service code -> regular expressions matched on normalised (lower-case) text at a word start.
# A trailing \w* lets compounds and inflections through (barnevernstjenesten, legevakta).
ALIASES: dict[str, tuple[str, ...]] = {
    "barnehage": (
        r"barnehage\w*",
        r"bhg\b",
        r"barnehagestyrer\w*",
        r"styrar\w*",
        r"pedagogisk leder\w*",
        r"pedagogisk leiar\w*",
        r"\w+barnehagen?\b",
    ),
    "skole": (
        r"skolen?\b",
        r"skule[n]?\b",
        r"skoler\w*",
        r"skular\w*",
        r"barneskole\w*",
        r"barneskule\w*",
        r"ungdomsskole\w*",
        r"ungdomsskule\w*",
        r"grunnskole\w*",
        r"grunnskule\w*",
        r"rektor\w*",
        r"kontaktlærer\w*",
        r"kontaktlærar\w*",
        r"lærer\w*",
        r"lærar\w*",
        r"videregående\w*",
        r"vidaregåande\w*",
        r"vgs\b",
        r"skoleledelse\w*",
        r"skuleleiing\w*",
        r"inspektør\w*",
        r"sosiallærer\w*",
        r"sosiallærar\w*",
        r"\w+skolen?\b",
        r"\w+skulen?\b",
    ),
    "sfo": (r"sfo\w*", r"aks\b", r"aktivitetsskole\w*", r"skolefritidsordning\w*", r"skulefritidsordning\w*"),
    "helsestasjon": (
        r"helsestasjon\w*",
        r"hs\b",
        r"jordmor\w*",
        r"jordmødre\w*",
        r"barselbesøk\w*",
        r"familiesenter\w*",
        r"svangerskapskontroll\w*",
        r"helsestasjonsprogram\w*",
    ),
    "skolehelsetjeneste": (
        r"skolehelsetjeneste\w*",
        r"skulehelseteneste\w*",
        r"sht\b",
        r"helsesykepleier på skolen",
        r"helsesjukepleiar på skulen",
        r"helserommet",
        r"skolehelse\w*",
        r"skulehelse\w*",
        r"helse for ungdom\w*",
    ),
    "barnevern": (
        r"barnevern\w*",
        r"bv\b",
        r"bvt\b",
        r"bvv\b",
        r"barnevernsvakt\w*",
        r"barnevernvakt\w*",
        r"barnevernstjeneste\w*",
        r"barneverntjeneste\w*",
        r"barneverntenest\w*",
        r"fosterhjem\w*",
        r"fosterheim\w*",
        r"beredskapshjem\w*",
        r"beredskapsheim\w*",
        r"omsorgsovertakelse\w*",
        r"akuttplassering\w*",
        r"institusjonsplass\w*",
        r"bufetat\w*",
        r"bufdir\w*",
        r"bekymringsmelding\w*",
    ),
    "ppt": (
        r"ppt\w*",
        r"pps\b",
        r"pp-tjeneste\w*",
        r"pp-teneste\w*",
        r"pedagogisk-psykologisk\w*",
        r"pedagogisk psykologisk\w*",
        r"spesialpedagogisk\w*",
        r"sakkyndig vurdering\w*",
        r"statped\w*",
    ),
    "bup": (
        r"bup\w*",
        r"barne- og ungdomspsykiatri\w*",
        r"barne og ungdomspsykiatri\w*",
        r"barne- og ungdomspsykiatrisk\w*",
        r"ungdomspsykiatri\w*",
        r"barnepsykiatri\w*",
        r"bupa\b",
    ),
    "fastlege": (r"fastlege\w*", r"fl\b", r"legekontor\w*", r"allmennlege\w*", r"fastlegekontor\w*", r"fastlegane\w*"),
    "sykehus": (
        r"sykehus\w*",
        r"sjukehus\w*",
        r"haukeland universitetssjukehus",
        r"haraldsplass\w*",
        r"føde\w*",
        r"barneklinikk\w*",
        r"nyfødtintensiv\w*",
        r"nyfødd-intensiv\w*",
        r"nyfødtavdeling\w*",
        r"barselavdeling\w*",
        r"barsel\w*",
        r"spesialisthelsetjeneste\w*",
        r"spesialisthelseteneste\w*",
        r"helse bergen\w*",
        r"helseforetak\w*",
        r"epikrise\w*",
        r"utskrivning\w*",
        r"utskriving\w*",
        r"innleggelse\w*",
        r"innlegging\w*",
        r"poliklinikk\w*",
        r"akuttmottak\w*",
        r"barneavdeling\w*",
        r"fødselsmelding\w*",
        r"ønh\b",
        r"hørselssentral\w*",
        r"habilitering\w*",
        r"nevrolog\w*",
        r"barnelege\w*",
        r"spesialist\w*",
        r"sjukehuslege\w*",
        r"sykehuslege\w*",
    ),
    "nav": (
        r"nav\b",
        r"navs\b",
        r"nav-\w*",
        r"navkontor\w*",
        r"navveileder\w*",
        r"sosialtjeneste\w*",
        r"sosialteneste\w*",
        r"sosialhjelp\w*",
        r"sosialkontor\w*",
        r"økonomisk stønad\w*",
        r"økonomisk støtte\w*",
        r"arbeids- og velferd\w*",
        r"veileder i nav",
        r"kvalifiseringsprogram\w*",
    ),
    "psykisk_helse_rus": (
        r"psykisk helse\w*",
        r"psykisk helsetjeneste\w*",
        r"psykisk helseteneste\w*",
        r"rustjeneste\w*",
        r"rusteneste\w*",
        r"ruskonsulent\w*",
        r"rusomsorg\w*",
        r"rus og psykisk\w*",
        r"rus- og psykisk\w*",
        r"psykiatrisk sykepleier\w*",
        r"psykiatrisk sjukepleiar\w*",
        r"oppfølgingsteam\w*",
        r"oppfølgingstenest\w*",
        r"rusbehandling\w*",
        r"lar-\w*",
        r"dps\w*",
        r"distriktspsykiatrisk\w*",
        r"avrusning\w*",
        r"akutteam\w*",
        r"rusteam\w*",
        r"akuttpsykiatri\w*",
        r"psykiatrisk\w*",
        r"legemiddelassistert\w*",
        r"psykiatri\w*",
        r"psykolog\w*",
        r"ruskonsulent\w*",
        r"rusavhengig\w*",
        r"psykisk helse og rus\w*",
    ),
    "tannhelse": (
        r"tannhelse\w*",
        r"tannlege\w*",
        r"tannklinikk\w*",
        r"tannpleier\w*",
        r"tannpleiar\w*",
        r"tannhelsetjeneste\w*",
        r"den offentlige tannhelsetjenesten\w*",
        r"dot\b",
    ),
    "koordinerende_enhet": (
        r"koordinerende enhet\w*",
        r"koordinerande eining\w*",
        r"ke\b",
        r"barnekoordinator\w*",
        r"koordinator\w*",
        r"individuell plan\w*",
        r"ip\b",
    ),
    "familievern": (r"familievern\w*", r"familiekontor\w*", r"mekling\w*", r"familieterapi\w*", r"familierådgiv\w*"),
    "krisesenter": (r"krisesenter\w*", r"krisesentret\w*", r"krisesenteret\w*", r"incestsenter\w*", r"voldsutsatte\w*"),
    "politi": (
        r"politi\w*",
        r"lensmann\w*",
        r"slt\b",
        r"slt-\w*",
        r"konfliktråd\w*",
        r"statens barnehus\w*",
        r"barnehuset\w*",
        r"avhør\w*",
        r"tilrettelagt avhør\w*",
        r"anmeld\w*",
        r"politiattest\w*",
    ),
    "fritid_kultur_idrett": (
        r"fritidsklubb\w*",
        r"ungdomsklubb\w*",
        r"idrettslag\w*",
        r"bibliotek\w*",
        r"kulturskole\w*",
        r"kulturskule\w*",
        r"fritidstilbud\w*",
        r"fritidstilbod\w*",
        r"idrett\w*",
        r"svømmehall\w*",
        r"symjehall\w*",
        r"fritidskontakt\w*",
        r"ferieklubb\w*",
        r"aktivitetstilbud\w*",
        r"ungdomshus\w*",
        r"fritidsleder\w*",
    ),
    "utviklingshemmede": (
        r"utviklingshemm\w*",
        r"avlastning\w*",
        r"avlasting\w*",
        r"avlastningsbolig\w*",
        r"bofellesskap\w*",
        r"bufellesskap\w*",
        r"miljøarbeidertjeneste\w*",
        r"miljøtjeneste\w*",
        r"tjenester til utviklingshemmede",
    ),
    "hjemmetjenester": (
        r"hjemmetjeneste\w*",
        r"heimeteneste\w*",
        r"hjemmesykepleie\w*",
        r"heimesjukepleie\w*",
        r"hjemmehjelp\w*",
        r"heimehjelp\w*",
        r"praktisk bistand\w*",
        r"hjemmebaserte\w*",
        r"heimebaserte\w*",
        r"brukerstyrt personlig assistan\w*",
        r"bpa\b",
        r"omsorgsstønad\w*",
        r"trygghetsalarm\w*",
    ),
    "sykehjem": (
        r"sykehjem\w*",
        r"sjukeheim\w*",
        r"korttidsplass\w*",
        r"korttidsopphold\w*",
        r"alders- og sykehjem\w*",
        r"bo- og behandlingssenter\w*",
        r"omsorgssenter\w*",
    ),
    "legevakt": (r"legevakt\w*", r"lv\b", r"akutt helse\w*", r"interkommunal legevakt\w*"),
    "introduksjonsprogram": (
        r"introduksjonsprogram\w*",
        r"introprogram\w*",
        r"intro\b",
        r"flyktning\w*",
        r"bosetting\w*",
        r"busetjing\w*",
        r"introduksjonssenter\w*",
        r"etat for inkludering",
        r"programrådgiver\w*",
        r"programrådgjevar\w*",
    ),
    "tolketjeneste": (
        r"tolk(?:en|er|ene|ar|ane)?\b",
        r"tolke(?!t\b|s\b)\w+",
        r"tolketjeneste\w*",
        r"tolketeneste\w*",
        r"skjermtolk\w*",
        r"telefontolk\w*",
        r"oppmøtetolk\w*",
    ),
    "it_system": (
        r"it\b",
        r"it-\w*",
        r"ikt\w*",
        r"fagsystem\w*",
        r"e-melding\w*",
        r"e-meldinga\w*",
        r"elektronisk melding\w*",
        r"elektroniske meldinger\w*",
        r"plo\b",
        r"plo-\w*",
        r"dips\w*",
        r"gerica\w*",
        r"visma\w*",
        r"familia\w*",
        r"hspro\w*",
        r"vigilo\w*",
        r"ist\b",
        r"digipost\w*",
        r"svarut\w*",
        r"helsenett\w*",
        r"journalsystem\w*",
        r"meldingsløft\w*",
        r"sikker e-post\w*",
        r"sikker sending\w*",
        r"elektronisk\w*",
        r"faks\w*",
        r"innboks\w*",
        r"integrasjon\w*",
        r"pc\b",
        r"pc-\w*",
        r"feilkvittering\w*",
        r"portal\w*",
        r"nettverksfeil\w*",
        r"nettverksproblem\w*",
        r"nettet\b",
        r"innlogging\w*",
        r"pålogging\w*",
        r"systemet\b",
        r"systemfeil\w*",
        r"server\b",
        r"serveren\w*",
        r"serverne\w*",
        r"serverfeil\w*",
        r"skoleportal\w*",
        r"skuleportal\w*",
        r"pasientjournal\w*",
        r"helsenorge\w*",
        r"kjernejournal\w*",
        r"meldingsutveksling\w*",
        r"elektronisk samhandling\w*",
        r"lenke\w*",
        r"app\b",
        r"appen\b",
        r"apper\b",
        r"appene\b",
        r"teams\w*",
        r"programvare\w*",
        r"datasystem\w*",
        r"nedetid\w*",
    ),
    # Words that point to a service without settling which: features only, never a rule on their own.
    "_helsesykepleier": (r"hfs\b", r"helsesøster\w*", r"helsesykepleier\w*", r"helsesjukepleiar\w*"),
    "_hjemmebesok": (r"hjemmebesøk\w*", r"heimebesøk\w*"),
    "_lege": (r"lege\b", r"legen\b", r"legar\b", r"leger\b", r"legene\b"),
    "_innlagt": (r"innlagt\w*", r"innlagd\w*", r"lagt inn", r"lagd inn", r"skrevet ut", r"skriven ut", r"skrivne ut",
                 r"skrive ut", r"utskrevet\w*", r"utskriven\w*", r"utskrivne\w*"),
    "_epost": (r"e-post\w*", r"epost\w*", r"mail\w*"),
    "_tildeling": (r"tildelingskontor\w*", r"forvaltningskontor\w*", r"vedtakskontor\w*"),
    "_voksenopplaering": (r"voksenopplæring\w*", r"vaksenopplæring\w*", r"norskopplæring\w*", r"mottak\w*"),
}


_WORD = re.compile(r"[\w-]+")


def _compile() -> tuple[re.Pattern[str], re.Pattern[str], dict[str, str]]:
    named = [
        (f"{service}__{i}", service, pattern)
        for service, patterns in ALIASES.items()
        for i, pattern in enumerate(patterns)
    ]
    # A regex alternation takes the first alternative that matches, so the longer (more specific)
    # patterns go first: "helsesykepleier på skolen" must win over "helsesykepleier".
    named.sort(key=lambda item: -len(item[2]))
    words = [(n, p.replace(r"\w*", r"[\w-]*").removesuffix(r"\b")) for n, _, p in named if " " not in p]
    phrases = [(n, p) for n, _, p in named if " " in p]
    word_re = re.compile("|".join(f"(?P<{n}>{p})" for n, p in words))
    phrase_re = re.compile(r"(?<![\w-])(?:" + "|".join(f"(?P<{n}>{p})" for n, p in phrases) + ")")
    return word_re, phrase_re, {name: service for name, service, _ in named}


def _literal_prefix(pattern: str) -> str:
    """The plain text every match of `pattern` starts with: what comes before its first regex operator."""
    if "|" in pattern:
        return ""  # a top-level alternative could start anywhere; never the case for a phrase alias
    for i, char in enumerate(pattern):
        if char in "\\.^$*+?{}[]()":
            # A quantifier after a character makes that character optional.
            return pattern[:max(i - 1, 0)] if char in "?*{" else pattern[:i]
    return pattern


_WORD_ALIAS, _PHRASE_ALIAS, _SERVICE_OF_GROUP = _compile()
# The phrase regex is slow on long text, so it runs only when a phrase's first word is present.
PHRASE_STARTS = frozenset(p.split(" ")[0] for ps in ALIASES.values() for p in ps if " " in p)
# No phrase alias matches where the text does not start with one of these ("den offentlige", not "den"):
# str.startswith with this tuple rules out most phrase-start words far more cheaply than the regex.
PHRASE_PREFIXES = tuple(sorted({_literal_prefix(p) for ps in ALIASES.values() for p in ps if " " in p}))


def phrase_service(text: str, start: int) -> str | None:
    """The service a multi-word alias starting at `start` of normalised text names, if any."""
    match = _PHRASE_ALIAS.match(text, start)
    return _SERVICE_OF_GROUP[match.lastgroup] if match and match.lastgroup else None


@lru_cache(maxsize=100_000)
def word_service(word: str) -> str | None:
    """The service a single (possibly hyphenated) word names, if any."""
    match = _WORD_ALIAS.fullmatch(word)
    return _SERVICE_OF_GROUP[match.lastgroup] if match and match.lastgroup else None


def find_services(text: str) -> list[tuple[str, str]]:
    """(service, matched text) for every alias found in normalised text, in order."""
    found = []
    for match in _WORD.finditer(text):
        word = match.group()
        if (
            word in PHRASE_STARTS and text.startswith(PHRASE_PREFIXES, match.start())
            and (phrase := _PHRASE_ALIAS.match(text, match.start())) and phrase.lastgroup
        ):
            found.append((_SERVICE_OF_GROUP[phrase.lastgroup], phrase.group()))
        service = word_service(word)
        if service is not None:
            found.append((service, word))
    return found


@lru_cache(maxsize=4096)
def unit_services(unit: str) -> tuple[str, ...]:
    """Services named by a normalised reporting-unit text ("etat for skole – ytre arna skule")."""
    return tuple(sorted({service for service, _ in find_services(unit)}))
