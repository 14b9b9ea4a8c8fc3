"""Pure text handling for Norwegian reports: normalising, tokenising, stemming, negation cues, bokmål/nynorsk.

Nothing here learns from data; every function is deterministic and safe to call on any string.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import Stemmer

# Why a nynorsk -> bokmål lexicon: the corpus is two thirds bokmål, and the same report written in
# nynorsk should land on the same features. Only unambiguous, frequent forms are mapped; the stemmer
# and the character n-grams take care of the rest.
NYNORSK_TO_BOKMAL: dict[str, str] = {
    "ikkje": "ikke", "ikkj": "ikke", "inga": "ingen", "ingenting": "ingenting", "utan": "uten",
    "aldri": "aldri", "korkje": "verken", "hverken": "verken",
    "frå": "fra", "høyre": "høre", "høyrt": "hørt", "sjå": "se", "såg": "så", "skreiv": "skrev",
    "fann": "fant", "stod": "sto", "låg": "lå", "budde": "bodde", "hugsa": "husket",
    "gløymde": "glemte", "gløymt": "glemt", "gløymd": "glemt", "ho": "hun",
    "eg": "jeg", "meg": "meg", "me": "vi", "dei": "de", "deira": "deres", "hennar": "hennes",
    "ein": "en", "eit": "et", "ei": "en", "kva": "hva", "kven": "hvem", "korleis": "hvordan",
    "kvifor": "hvorfor", "kor": "hvor", "kvar": "hver", "kvart": "hvert", "då": "da", "no": "nå",
    "berre": "bare", "òg": "også", "og": "og", "mykje": "mye", "noko": "noe", "nokon": "noen",
    "nokre": "noen", "sjølv": "selv", "sjølve": "selve", "heile": "hele", "hjå": "hos",
    "saman": "sammen", "mellom": "mellom", "sidan": "siden", "medan": "mens", "difor": "derfor",
    "anten": "enten", "framleis": "fortsatt", "enno": "ennå", "att": "igjen", "same": "samme",
    "eigen": "egen", "eige": "eget", "eigne": "egne", "fyrst": "først", "fyrste": "første",
    "tidlegare": "tidligere", "seinare": "senere", "seint": "sent", "seinast": "senest",
    "vanskeleg": "vanskelig", "mogleg": "mulig", "naudsynt": "nødvendig", "nødvendig": "nødvendig",
    "vart": "ble", "blei": "ble", "vert": "blir", "vere": "være", "vera": "være", "verte": "bli",
    "fekk": "fikk", "gjekk": "gikk", "kome": "komme", "kjem": "kommer", "gje": "gi", "gjev": "gir",
    "gav": "ga", "gjeve": "gitt", "gjere": "gjøre", "gjer": "gjør", "seier": "sier", "sei": "si",
    "veit": "vet", "trudde": "trodde", "meinte": "mente", "ringde": "ringte", "fortalde": "fortalte",
    "spurde": "spurte", "svara": "svarte", "snakka": "snakket", "tala": "snakket", "henta": "hentet",
    "flytta": "flyttet", "starta": "startet", "byrja": "begynte", "slutta": "sluttet",
    "venta": "ventet", "varsla": "varslet", "mangla": "manglet", "manglar": "mangler",
    "kalla": "kalte", "innkalla": "innkalt", "melde": "meldte", "sende": "sendte", "ønskjer": "ønsker",
    "treng": "trenger", "trong": "trengte", "møtte": "møtte", "visste": "visste", "fått": "fått",
    "skule": "skole", "skulen": "skolen", "skular": "skoler", "skulane": "skolene",
    "elevar": "elever", "elevane": "elevene", "lærar": "lærer", "læraren": "læreren",
    "lærarar": "lærere", "lærarane": "lærerne", "kontaktlærar": "kontaktlærer",
    "kontaktlæraren": "kontaktlæreren", "leiar": "leder", "leiaren": "lederen", "leiing": "ledelse",
    "saksbehandlar": "saksbehandler", "saksbehandlaren": "saksbehandleren",
    "sakshandsamar": "saksbehandler", "sakshandsamaren": "saksbehandleren", "handsame": "behandle",
    "handsama": "behandlet", "tilsett": "ansatt", "tilsette": "ansatte", "føresette": "foresatte",
    "foreldra": "foreldrene", "borna": "barna", "born": "barn", "guten": "gutten", "gut": "gutt",
    "heim": "hjem", "heime": "hjemme", "heimen": "hjemmet", "veke": "uke", "veka": "uka",
    "veker": "uker", "vekene": "ukene", "månad": "måned", "månader": "måneder", "dagar": "dager",
    "avtala": "avtalen", "meldinga": "meldingen", "tenesta": "tjenesten", "teneste": "tjeneste",
    "tenester": "tjenester", "tenestene": "tjenestene", "ansvarleg": "ansvarlig",
    "følgje": "følge", "fylgje": "følge", "oppfølgjing": "oppfølging", "rutinane": "rutinene",
    "sjuk": "syk", "sjuke": "syke", "sjukdom": "sykdom", "sjukehus": "sykehus",
    "sjukehuset": "sykehuset", "sjukepleiar": "sykepleier", "sjukepleiaren": "sykepleieren",
    "helsesjukepleiar": "helsesykepleier", "helsesjukepleiaren": "helsesykepleieren",
    "sjukeheim": "sykehjem", "sjukeheimen": "sykehjemmet", "pårørande": "pårørende",
    "einsleg": "enslig", "eldste": "eldste", "yngste": "yngste", "jenta": "jenta", "vaksne": "voksne",
    "vaksen": "voksen", "ungdomsskulen": "ungdomsskolen", "barneskulen": "barneskolen",
    "opplysningar": "opplysninger", "opplysningane": "opplysningene", "dokumentasjonen": "dokumentasjonen",
    "samtykkje": "samtykke", "tilbod": "tilbud", "tilbodet": "tilbudet", "vedtaket": "vedtaket",
    "kommunen": "kommunen", "avdelinga": "avdelingen", "eininga": "enheten", "eining": "enhet",
    "koordinerande": "koordinerende", "barnehagen": "barnehagen",
    "haust": "høst", "vinter": "vinter", "fleire": "flere", "fleste": "fleste", "gonger": "ganger",
    "gong": "gang", "gongen": "gangen", "styrar": "styrer", "styraren": "styreren", "forståing": "forståelse",
    "forståinga": "forståelsen", "skriven": "skrevet", "skrivne": "skrevet", "skrive": "skrive",
    "nyfødd": "nyfødt", "nyfødde": "nyfødte", "tilvising": "henvisning", "tilvisinga": "henvisningen",
    "tilvisingar": "henvisninger", "oppdaga": "oppdaget", "oppdagar": "oppdager",
    "sendt": "sendt", "samarbeidet": "samarbeidet", "tenestemottakar": "tjenestemottaker",
    "heilskapleg": "helhetlig", "heilskaplege": "helhetlige", "kvarandre": "hverandre", "etatane": "etatene",
    "instansane": "instansene", "einingane": "enhetene", "avklart": "avklart", "ansvaret": "ansvaret",
    "ventetida": "ventetiden", "ventelista": "ventelisten", "kapasitet": "kapasitet", "vedtak": "vedtak",
    "likevel": "likevel", "sjølvstendig": "selvstendig",
    "plikt": "plikt", "teieplikt": "taushetsplikt", "teieplikta": "taushetsplikten",
    "foreldre": "foreldre", "barnet": "barnet", "fosterheim": "fosterhjem", "fosterheimen": "fosterhjemmet",
    "heimebesøk": "hjemmebesøk", "kvarandres": "hverandres", "avgjerd": "avgjørelse", "avgjerda": "avgjørelsen",
}

# Compound parts whose nynorsk spelling differs (skulehelsetenesta -> skolehelsetjenesten).
_COMPOUND_PARTS = (
    ("helsesjukepleiar", "helsesykepleier"), ("sjukepleiar", "sykepleier"), ("sjukehus", "sykehus"),
    ("sjukeheim", "sykehjem"), ("tenesta", "tjenesten"), ("teneste", "tjeneste"), ("skule", "skole"),
    ("heimeteneste", "hjemmetjeneste"), ("heimesjukepleie", "hjemmesykepleie"), ("eining", "enhet"),
)

# Negation cues; the next NEGATION_SCOPE tokens of the same clause are marked ("ga ikke beskjed").
NEGATIONS = frozenset({"ikke", "ingen", "aldri", "uten", "verken", "ingenting", "intet"})
NEGATION_SCOPE = 3
NEG_PREFIX = "neg_"

# Hyphenated compounds stay whole ("e-melding", "nav-kontoret", "ppt-kontakt"): the gazetteer needs them.
_TOKEN = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*|\d+|[.!?;:()\n]")
BOUNDARIES = frozenset(".!?;:()\n")

# Markers used only to guess the written standard of a text for evaluation slices.
_NYNORSK_MARKERS = frozenset({
    "ikkje", "eg", "ein", "eit", "frå", "kva", "kven", "korleis", "kvifor", "berre", "òg", "mykje",
    "noko", "nokon", "nokre", "sjølv", "heile", "hjå", "vart", "fekk", "gjekk", "vere", "dei",
    "skulen", "skule", "eleven", "elevane", "elevar", "lærar", "læraren", "saman", "sidan", "difor",
    "framleis", "enno", "tenesta", "teneste", "ho", "veke", "veka", "heime", "føresette",
    "foreldra", "kome", "kjem", "seier", "meldinga", "ringde", "fortalde", "treng", "då",
    "utan", "inga", "ansvarleg", "vanskeleg", "tidlegare", "sjukehus", "sjukehuset", "me", "gje",
})
_BOKMAL_MARKERS = frozenset({
    "ikke", "jeg", "en", "et", "fra", "hva", "hvem", "hvordan", "hvorfor", "bare", "også", "mye",
    "noe", "noen", "selv", "hele", "hos", "ble", "fikk", "gikk", "være", "de", "skolen", "skole",
    "lærer", "læreren", "sammen", "siden", "derfor", "fortsatt", "tjenesten", "tjeneste", "hun",
    "uke", "uken", "hjemme", "foresatte", "foreldrene", "komme", "kommer", "sier", "meldingen",
    "ringte", "fortalte", "sendte", "trenger", "uten", "ansvarlig", "vanskelig", "tidligere",
    "sykehus", "sykehuset", "vi", "gi",
})

_stemmer = Stemmer.Stemmer("norwegian")

# Words that say when or where, never what happened: in the corpus they were evidence only because of
# how its writers dated and placed their reports ("januar +0.66" in an explanation). They are dropped
# from the word and character blocks; ages and grades written with digits are read from the text itself.
REDACTION_MARKERS = re.compile(r"\[(?:fødselsnummer|telefonnummer|e-post)\]", re.IGNORECASE)
_MONTHS = (
    "januar", "februar", "mars", "april", "mai", "juni", "juli", "august", "september", "oktober", "november",
    "desember", "jan", "feb", "apr", "aug", "sep", "sept", "okt", "nov", "des",
)
_WEEKDAYS = ("mandag", "tirsdag", "onsdag", "torsdag", "fredag", "lørdag", "søndag", "måndag", "tysdag",
             "laurdag", "sundag")
# Districts and places of the municipality and its neighbours, and the largest Norwegian towns: the names
# of units ("Helsestasjon Åsane") say where a report comes from, not what it is about.
PLACE_NAMES = frozenset({
    "bergen", "bergens", "arna", "bergenhus", "fana", "fyllingsdalen", "laksevåg", "ytrebygda", "årstad", "åsane",
    "loddefjord", "nordnes", "sandviken", "landås", "kalfaret", "slettebakken", "olsvik", "tertnes", "kirkevoll",
    "slåtthaug", "danmarksplass", "nygård", "minde", "paradis", "nesttun", "rådal", "hordvik", "ulset", "eidsvåg",
    "møhlenpris", "sandsli", "kokstad", "bønes", "fjellsiden", "lønborg",
    "askøy", "øygarden", "sotra", "bjørnafjorden", "alver", "voss", "stord", "osterøy", "vaksdal",
    "oslo", "trondheim", "stavanger", "tromsø", "kristiansand", "drammen", "fredrikstad", "sandnes", "bodø",
    "ålesund", "haugesund", "tønsberg", "moss", "skien", "arendal", "hamar", "lillehammer", "molde", "harstad",
    "gjøvik", "larvik", "sarpsborg", "porsgrunn", "halden", "steinkjer", "narvik", "alta", "førde", "florø",
})
NEUTRAL_WORDS = frozenset({
    *_MONTHS, *(f"{m}s" for m in _MONTHS[:12]),
    *(day + suffix for day in _WEEKDAYS for suffix in ("", "en", "er", "ene", "s", "ar", "ane", "ane")),
    "kl", "klokka", "klokken", *PLACE_NAMES,
})



def normalise(text: str | None) -> str:
    """Lower-cased NFKC text with soft hyphens removed and whitespace collapsed; '' for None."""
    return " ".join(normalised_chunks(text))


def normalised_chunks(text: str | None) -> list[str]:
    """The space-separated pieces of normalise(text), [] for empty text; spares a join and a split."""
    if not text:
        return []
    if not text.isascii() and not unicodedata.is_normalized("NFKC", text):  # ASCII is NFKC already
        text = unicodedata.normalize("NFKC", text)
    return text.replace("\u00ad", "").lower().split()


# Abbreviations employees write for the services, read as the full names so that "BV" and "barnevernet"
# give the same words and n-grams (the gazetteer already finds both as the same service).
ABBREVIATIONS: dict[str, tuple[str, ...]] = {
    "bv": ("barnevernet",), "bvt": ("barnevernstjenesten",), "hfs": ("helsesykepleier",),
    "bhg": ("barnehagen",), "ke": ("koordinerende", "enhet"), "sht": ("skolehelsetjenesten",),
    "fl": ("fastlegen",), "lv": ("legevakten",), "ip": ("individuell", "plan"),
}


def expand_abbreviations(tokens: list[str]) -> list[str]:
    """Tokens with the service abbreviations of ABBREVIATIONS written out."""
    return [part for token in tokens for part in ABBREVIATIONS.get(token, (token,))]


def strip_markers(text: str) -> str:
    """Text without the redaction markers the service writes in place of numbers and addresses."""
    return REDACTION_MARKERS.sub(" ", text) if "[" in text else text


def is_neutral(token: str) -> bool:
    """True for a number, month, weekday, time or place word: dropped before the text features."""
    return token.isdecimal() or token in NEUTRAL_WORDS


def content_tokens(tokens: list[str]) -> list[str]:
    """Tokens without neutral words, nor the dots and colons between two numbers ("03.12.2025", "14:30")."""
    out: list[str] = []
    last = len(tokens) - 1
    for i, token in enumerate(tokens):
        if is_neutral(token):
            continue
        if token in ".:" and 0 < i < last and tokens[i - 1].isdecimal() and tokens[i + 1].isdecimal():
            continue
        out.append(token)
    return out


def tokenize(text: str) -> list[str]:
    """Words, numbers and clause boundaries of normalised text, in order."""
    return _TOKEN.findall(text)


def is_boundary(token: str) -> bool:
    """True for the punctuation tokens that end a negation scope."""
    return token in BOUNDARIES


@lru_cache(maxsize=200_000)
def to_bokmal(token: str) -> str:
    """Map a nynorsk word form to its bokmål form; other words are returned unchanged."""
    mapped = NYNORSK_TO_BOKMAL.get(token)
    if mapped is not None:
        return mapped
    if len(token) > 6 and token.endswith(("inga", "ingane", "ingar")):
        # The nynorsk feminine forms of -ing nouns: "meldinga" -> "meldingen", "tilvisingane" -> "-ene".
        stem_, _, ending = token.rpartition("ing")
        token = stem_ + "ing" + {"a": "en", "ane": "ene", "ar": "er"}[ending]
    if len(token) > 7:
        for nynorsk, bokmal in _COMPOUND_PARTS:
            if nynorsk in token:
                token = token.replace(nynorsk, bokmal)
    return token


@lru_cache(maxsize=200_000)
def stem(token: str) -> str:
    """Snowball (Norwegian) stem of a bokmål word form."""
    stemmed: str = _stemmer.stemWord(token)
    return stemmed


def language(text: str) -> str:
    """Guess 'nn' (nynorsk) or 'nb' (bokmål) from marker words; ties go to bokmål."""
    tokens = tokenize(normalise(text))
    nn = sum(token in _NYNORSK_MARKERS for token in tokens)
    nb = sum(token in _BOKMAL_MARKERS for token in tokens)
    return "nn" if nn > nb else "nb"


def word_count(text: str) -> int:
    """Number of words (letters or digits) in a text."""
    return sum(not is_boundary(token) for token in tokenize(normalise(text)))
