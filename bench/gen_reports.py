"""Generate a realistic history of deviation reports straight into a PostgreSQL database (COPY).

The statistics and export benchmarks need a large, realistic database: by default 1,000,000 reports over
five years (December 2021 to November 2026, Europe/Oslo), filed by units of the municipal agencies, with
the categories reporters pick (about 3 % labels we cannot map), statuses, target groups and services, and
about 5 % collaboration deviations about children. The classifier's scores, advisers' reviews (including
superseded ones and the audit sample) and the effective labels are filled in the way the service fills
them: the effective labels are computed by `app.review.labels.effective_labels`, the audit draw by
`app.ingest.mapping.audit_draw`, so the tables agree with each other as if the service had stored them.

    .venv/bin/python bench/gen_reports.py                     # 1,000,000 reports into avvik_bench_stats
    .venv/bin/python bench/gen_reports.py --reuse             # keep a complete database of the same size and seed
    .venv/bin/python bench/gen_reports.py --reports 20000 --database avvik_bench_small

The database is created (only names starting with avvik_bench_ on a loopback server are touched), migrated
with the app's migrations, loaded with COPY with secondary indexes and foreign-key triggers off, then the
indexes are rebuilt and the tables vacuumed and analysed. When the load completes, the database comment
records its size and seed; `--reuse` keeps a database whose comment matches (and migrates it to the head
revision, so a new migration is applied to the existing rows), and rebuilds any other.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import accumulate
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import psycopg
from psycopg import sql
from sqlalchemy.engine import URL, make_url

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere: the app package sits beside bench/
    sys.path.insert(0, str(ROOT))

from app.ingest.mapping import audit_draw  # noqa: E402
from app.review.labels import TARGET_CATEGORY, Suggestion, Verdict, effective_labels  # noqa: E402
from app.review.models import Decision  # noqa: E402

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_DATABASE = "avvik_bench_stats"
OSLO = ZoneInfo("Europe/Oslo")
FIRST_DAY, LAST_DAY = date(2021, 12, 1), date(2026, 11, 30)
# The day the new category existed in BkKvalitet; before it, reporters filed these reports elsewhere.
CATEGORY_INTRODUCED = date(2026, 1, 1)
# Reports before this day were stored before the classifier ran and never rescored: they stay unscored.
SCORING_FROM = date(2022, 9, 1)
LOADED_TABLES = ("report", "report_target_group", "report_service", "report_link", "report_score", "review",
                 "report_label")
CHILD_GROUPS = ("gravide_og_spedbarn", "barn_1_5", "barn_6_12", "ungdom_13_17", "unge_voksne_18_25",
                "foreldre_og_familie", "barn_som_parorende")
ADULT_GROUPS = ("voksne", "eldre")


class GenerateError(RuntimeError):
    """The database could not be generated."""


# --------------------------------------------------------------------------------------------------
# The organisation: agencies, their units, how often each reports and what it reports on


PLACES = ("Garnes", "Åsane", "Fana", "Laksevåg", "Arna", "Ytrebygda", "Fyllingsdalen", "Årstad", "Bergenhus",
          "Landås", "Nattland", "Slettebakken", "Sandsli", "Kråkenes", "Loddefjord", "Tertnes", "Ulset",
          "Hordvik", "Ytre Arna", "Indre Arna", "Møhlenpris", "Sandviken", "Nesttun", "Paradis", "Kalfaret",
          "Minde", "Kronstad", "Solheimsviken", "Danmarksplass", "Hop", "Skjold", "Rå", "Kirkevoll", "Søreide",
          "Bønes", "Olsvik", "Godvik", "Kjøkkelvik", "Hetlevik", "Mathopen", "Flaktveit", "Salhus", "Eidsvåg",
          "Haukeland", "Ny-Krohnborg", "Nygård", "Rothaugen", "Krohnengen", "Tanks", "Seljedalen", "Ådland",
          "Skranevatnet", "Hellen", "Rolland", "Mjølkeråen", "Aurdal", "Blokkhaugen", "Birkeland", "Smørås")
BOROUGHS = ("Arna", "Bergenhus", "Fana", "Fyllingsdalen", "Laksevåg", "Ytrebygda", "Årstad", "Åsane")


@dataclass(frozen=True)
class Agency:
    """A municipal agency as the quality system names it, its units and what its reports are about."""

    code: str
    department: str
    label: str
    weight: float  # share of all reports
    child_share: float  # share of its reports that are collaboration deviations about children
    units: tuple[str, ...]
    own_services: tuple[str, ...]  # services this agency's reporters name as their own side
    groups: tuple[str, ...]  # target groups its reports concern


def _units(*patterns: str, places: Sequence[str] = PLACES) -> tuple[str, ...]:
    return tuple(p.format(place=place) for p in patterns for place in places)


AGENCIES = (
    Agency("skole", "BBS", "Etat for skole", 0.21, 0.08, _units("{place} skole", places=PLACES[:50]),
           ("skole", "sfo"), ("barn_6_12", "ungdom_13_17", "foreldre_og_familie")),
    Agency("barnehage", "BBS", "Etat for barnehage", 0.16, 0.07, _units("{place} barnehage"),
           ("barnehage",), ("barn_1_5", "foreldre_og_familie")),
    Agency("barn_og_familie", "BBSM", "Etat for barn og familie", 0.11, 0.14,
           (*_units("Helsestasjon {place}", "Barnevern {place}", "Skolehelsetjenesten {place}", places=BOROUGHS),
            "Familievernkontoret", "Barnevernvakten", "Fagteam 3"),
           ("helsestasjon", "barnevern", "skolehelsetjeneste"),
           ("gravide_og_spedbarn", "barn_1_5", "barn_6_12", "ungdom_13_17", "foreldre_og_familie")),
    Agency("sosiale_tjenester", "BBSM", "Etat for sosiale tjenester", 0.06, 0.05,
           _units("NAV {place}", places=BOROUGHS), ("nav",), ("foreldre_og_familie", "unge_voksne_18_25", "voksne")),
    Agency("inkludering", "BBSM", "Etat for inkludering", 0.02, 0.05, ("Introduksjonssenteret", "Mottak Nygård"),
           ("introduksjonsprogram",), ("foreldre_og_familie", "voksne")),
    Agency("psykisk_helse_rus", "BBSM", "Etat for psykisk helse og rustjenester", 0.05, 0.04,
           (*_units("Psykisk helsetjeneste {place}", places=BOROUGHS), "Ruspoliklinikken"),
           ("psykisk_helse_rus",), ("barn_som_parorende", "voksne", "unge_voksne_18_25")),
    Agency("spesialpedagogiske_tjenester", "BBS", "Etat for spesialpedagogiske tjenester", 0.03, 0.12,
           _units("PPT {place}", places=BOROUGHS), ("ppt",), ("barn_1_5", "barn_6_12", "ungdom_13_17")),
    Agency("helsetjenester", "BEHO", "Etat for helsetjenester", 0.06, 0.03,
           ("Bergen legevakt", "Koordinerende enhet", "Kommunale fastleger"), ("legevakt", "koordinerende_enhet"),
           ("voksne", "eldre", "barn_1_5")),
    Agency("utviklingshemmede", "BEHO", "Etat for tjenester til utviklingshemmede", 0.05, 0.02,
           _units("Bofellesskap {place}", places=PLACES[:30]), ("utviklingshemmede",), ("voksne", "unge_voksne_18_25")),
    Agency("hjemmebaserte_tjenester", "BEHO", "Etat for hjemmebaserte tjenester", 0.10, 0.005,
           _units("Hjemmesykepleien {place}", places=BOROUGHS), ("hjemmetjenester",), ("eldre", "voksne")),
    Agency("alders_og_sykehjem", "BEHO", "Etat for alders- og sykehjem", 0.10, 0.002,
           _units("{place} sykehjem", places=PLACES[:25]), ("sykehjem",), ("eldre",)),
    Agency("idrett", "BNKI", "Etat for idrett", 0.015, 0.02, ("Idrettsservice", "Svømmehallene"),
           ("fritid_kultur_idrett",), ("barn_6_12", "ungdom_13_17", "voksne")),
    Agency("bibliotek_og_kultur", "BNKI", "Etat for bibliotek og kultur", 0.015, 0.02,
           ("Bergen offentlige bibliotek", "Kulturhuset USF", "Fritidsklubben Loddefjord"),
           ("fritid_kultur_idrett",), ("barn_6_12", "ungdom_13_17", "voksne")),
)
# Units the quality system sends as text we cannot place in the organisation.
UNKNOWN_UNITS = ("Privat barnehage Solstrålen", "Innkjøpsseksjonen", "Prosjekt Trygg oppvekst", "Ukjent enhet")
COUNTERPARTS = ("barnevern", "skolehelsetjeneste", "helsestasjon", "ppt", "bup", "fastlege", "sykehus", "nav",
                "psykisk_helse_rus", "koordinerende_enhet", "familievern", "politi", "tolketjeneste", "skole",
                "barnehage", "it_system")
# (category code, weight) of the reports that are not collaboration deviations about children.
OTHER_CATEGORIES = (
    ("pasient_brukerskade", 18), ("tjenesteutovelse", 14), ("hms", 12), ("vold_og_trusler", 12),
    ("legemiddelhandtering", 8), ("ikt", 6), ("bygg_og_eiendom", 4), ("informasjonssikkerhet_personvern", 5),
    ("forbedringsforslag", 4), ("annet", 3), ("kommunikasjon_og_samhandling", 4), ("informasjonsplikt", 1.5),
    ("mangler_kommunikasjon_informasjon", 2), ("relasjon_samarbeid", 1), ("brudd_pa_tjenesteavtale", 0.8),
    ("elektronisk_samhandling_internt", 0.8), ("elektronisk_samhandling_eksterne", 0.6),
    ("interne_avtaler_og_kontrakter", 0.3), ("eksterne_avtaler_og_kontrakter", 0.3), ("leverandoroppfolging", 0.3),
    ("sprakutfordring", 0.4), ("feil_mangelfull_leveranse", 0.5), ("kommunikasjon_annet", 0.7),
)
# Before the new category existed, collaboration deviations about children were filed under these.
CHILD_CATEGORIES_BEFORE = (("kommunikasjon_og_samhandling", 40), ("informasjonsplikt", 15),
                           ("mangler_kommunikasjon_informasjon", 15), ("relasjon_samarbeid", 8),
                           ("brudd_pa_tjenesteavtale", 5), ("tjenesteutovelse", 10), ("annet", 4), ("hms", 3))
UNKNOWN_CATEGORY_LABELS = ("Uønsket hendelse", "Avvik - annet", "Rutinesvikt", "Kvalitetsavvik", "Personalforhold")
STATUS_OLD = (("lukket", 92), ("under_behandling", 5), ("registrert", 3))
STATUS_RECENT = (("registrert", 45), ("under_behandling", 35), ("lukket", 20))
SEVERITIES = (None, None, "lav", "middels", "høy")
ADVISERS = tuple(f"user:{i:08x}-7c1e-4d2a-9f00-{i:012x}@bergen" for i in range(1, 13))

# --------------------------------------------------------------------------------------------------
# Text: scenarios a quality adviser would recognise, varied by place, role and time

CHILD_SCENARIOS = (
    ("Ingen tilbakemelding på bekymringsmelding", "Vi sendte bekymringsmelding til {other} for {weeks} uker siden "
     "og har ikke fått tilbakemelding om at meldingen er mottatt eller hva som skjer videre."),
    ("Skolehelsetjenesten fikk ikke beskjed om ny elev", "En ny elev startet på {unit} i {month} uten at "
     "skolehelsetjenesten fikk beskjed. Eleven har kjente helseutfordringer som krever oppfølging."),
    ("Epikrise mangler etter fødsel", "Helsestasjonen fikk ikke epikrise fra sykehuset etter en for tidlig fødsel. "
     "Hjemmebesøket ble utsatt i {days} dager fordi vi manglet opplysninger."),
    ("Ingen møtte fra {other} på ansvarsgruppemøte", "Ansvarsgruppemøtet for et barn i {grade}. klasse ble "
     "gjennomført uten at {other} møtte, selv om møtet var avtalt i god tid."),
    ("Uklart ansvar for barnekoordinator", "Familien har ventet i {weeks} uker på barnekoordinator fordi "
     "{other} og vår tjeneste mener den andre har ansvaret. Ingen individuell plan er startet."),
    ("Barn som pårørende ikke kartlagt", "En forelder ble lagt inn uten at det ble kartlagt om det var barn i "
     "hjemmet. {unit} fikk vite det fra barnet selv {days} dager senere."),
    ("E-melding om barn sendt til feil mottaker", "En e-melding med opplysninger om et barn på {age} år ble sendt "
     "til feil enhet hos {other}. Det tok {days} dager før den kom fram."),
    ("Samtykke ikke innhentet, informasjon ikke delt", "Det ble ikke bedt om samtykke fra foresatte, og derfor ble "
     "ingen informasjon delt mellom {unit} og {other} før overgangen."),
    ("Overgang barnehage–skole uten overføringsmøte", "Overføringsmøtet mellom barnehage og skole ble ikke holdt. "
     "Skolen manglet kjennskap til vedtak om spesialpedagogisk hjelp fra {other}."),
    ("Henvisning returnert uten kontakt", "Henvisningen til {other} ble returnert fordi den manglet opplysninger, "
     "uten at noen tok kontakt med {unit}. Barnet har ventet i {weeks} uker."),
    ("Tolk ikke bestilt til foreldresamtale", "Det var ikke bestilt tolk til samtale med foreldrene, selv om "
     "{other} visste at familien trengte det. Samtalen måtte utsettes."),
    ("Vedtak ikke sendt til barnehagen", "{other} fattet vedtak om tiltak for et barn på {age} år, men barnehagen "
     "fikk ikke kopi og kunne ikke følge opp som avtalt."),
)
ADULT_COLLABORATION = (
    ("Utskrevet uten beskjed til hjemmesykepleien", "En eldre pasient ble skrevet ut fra sykehuset uten at "
     "hjemmesykepleien i {place} fikk beskjed. Pasienten var alene hjemme i {days} timer."),
    ("Manglende informasjon om legemiddelendring", "Fastlegen endret medisineringen uten å informere {unit}. "
     "Endringen ble oppdaget ved neste utdeling."),
    ("Svikt i overføring av pasientopplysninger", "Opplysninger om bruker ble ikke overført mellom avdelingene "
     "ved flytting til {unit}."),
)
OTHER_TEXTS = {
    "pasient_brukerskade": (("Fall i uteområdet", "Et barn falt fra klatrestativet ved {unit} og slo hodet. "
                             "Foresatte ble varslet og barnet undersøkt på legevakten."),
                            ("Bruker falt på badet", "Beboer ved {unit} falt på badet om natten og fikk et kutt."),
                            ("Fall fra seng", "Bruker falt ut av sengen. Sengehest var ikke satt opp.")),
    "tjenesteutovelse": (("Avtalt tilsyn ble ikke gjennomført", "Tilsynet ble ikke gjennomført som avtalt på grunn "
                          "av sykdom i personalgruppen ved {unit}."),
                         ("Manglende dokumentasjon", "Det mangler dokumentasjon av tiltak i journalen for {month}.")),
    "hms": (("Høyt sykefravær", "Det er høyt sykefravær ved {unit}, og bemanningen er under forsvarlig nivå."),
            ("Tung løft uten hjelpemidler", "Ansatte må løfte uten hjelpemidler fordi personløfteren er defekt.")),
    "vold_og_trusler": (("Trusler mot ansatt", "En ansatt ved {unit} ble truet av en pårørende i resepsjonen."),
                        ("Elev slo medelev", "En elev slo en medelev i friminuttet. Begge foresatte er kontaktet.")),
    "legemiddelhandtering": (("Feil dose gitt", "Bruker fikk feil dose av fast medisin ved kveldsutdelingen."),
                             ("Medisin ikke gitt", "Morgenmedisin ble ikke gitt fordi dosetten manglet.")),
    "ikt": (("Nettverket nede", "Nettverket ved {unit} var nede i {days} timer. Ingen pasientopplysninger gikk tapt."),
            ("Skriveren virker ikke", "Skriveren på kontoret har ikke virket på {days} dager.")),
    "bygg_og_eiendom": (("Vannlekkasje", "Vannlekkasje i kjelleren ved {unit}. Rommet er stengt."),
                        ("Ødelagt port", "Porten til uteområdet lukker seg ikke.")),
    "informasjonssikkerhet_personvern": (("Dokumenter på avveie", "Papirer med personopplysninger ble funnet på "
                                          "skriveren ved {unit}."),
                                         ("Feil tilgang i fagsystem", "En vikar hadde tilgang til journaler i {days} "
                                          "dager etter at vikariatet var slutt.")),
    "forbedringsforslag": (("Forslag om felles rutine", "Vi foreslår en felles rutine for oppstartsmøter ved {unit}."),
                           ("Bedre skjema", "Skjemaet for registrering av fravær bør forenkles.")),
}
FOLLOW_UPS = ("Saken er tatt opp med enhetsleder, og rutinen gjennomgås på neste personalmøte.",
              "Foresatte er informert og ønsker tilbakemelding på hva som gjøres.",
              "Det er avtalt et møte innen {weeks} uker for å finne ut hvordan dette kan unngås.",
              "Avviket meldes for å synliggjøre at rutinen ikke fungerer godt nok.",
              "Tilsvarende har skjedd tidligere i {month}.",
              "Kvalitetsrådgiver er orientert.")
COMMUNICATION_TEXTS = (("Informasjon kom for sent", "Informasjon om endret møtetid nådde ikke alle ansatte ved "
                        "{unit} i tide."),
                       ("Uklart hvem som hadde ansvar", "Det var uklart hvem som hadde ansvar for å kontakte "
                        "leverandøren etter avviket i {month}."))


# --------------------------------------------------------------------------------------------------
# One report and the rows it gives


@dataclass
class Tables:
    """COPY text for one chunk, one buffer per table."""

    buffers: dict[str, io.StringIO] = field(default_factory=lambda: {t: io.StringIO() for t in LOADED_TABLES})
    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LOADED_TABLES, 0))

    def add(self, table: str, *values: Any) -> None:
        """Append a row in COPY text format."""
        self.buffers[table].write("\t".join(_copy_text(v) for v in values))
        self.buffers[table].write("\n")
        self.rows[table] += 1


def _copy_text(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (list, dict)):
        value = json.dumps(value, ensure_ascii=False)
    text = str(value)
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


REPORT_COLUMNS = ("id", "source_system", "external_id", "title", "description", "reported_category", "category_code",
                  "occurred_at", "reported_at", "reported_on", "occurred_sort_at", "department_code", "agency_code",
                  "unit_name", "unit_code", "reporting_unit_text", "status", "severity", "source_version",
                  "source_version_key", "content_hash", "redacted_identity_numbers", "redacted_phone_numbers",
                  "redacted_emails", "created_at", "updated_at", "confirmed_category_code",
                  "confirmed_category_provenance", "suggested_category_code", "suggested_category_provenance",
                  "audit_draw")
COLUMNS = {
    "report": REPORT_COLUMNS,
    "report_target_group": ("report_id", "code"),
    "report_service": ("report_id", "code"),
    "report_link": ("report_id", "related_external_id"),
    "report_score": ("report_id", "model_version", "score", "threshold", "flagged", "target_groups", "services",
                     "explanation", "scored_at"),
    "review": ("id", "report_id", "decision", "category_code", "target_groups", "services", "comment", "reviewer",
               "reviewed_at", "score", "flagged", "audit_sample", "model_version"),
    "report_label": ("report_id", "dimension", "code", "provenance", "reported_on"),
}


@dataclass(frozen=True)
class Options:
    """What to generate."""

    reports: int = 1_000_000
    seed: int = 1
    chunk: int = 50_000
    audit_sample_share: float = 0.02


class Generator:
    """Reports in time order with everything the service would have stored about them."""

    def __init__(self, options: Options, labels: dict[str, str], model_version: str, threshold: float) -> None:
        self.options = options
        self.labels = labels  # category code -> label as BkKvalitet writes it
        self.model_version = model_version
        self.threshold = threshold
        self.rng = random.Random(options.seed)
        self.review_id = 0
        self.year_counters: dict[int, int] = {}
        self.recent_external: list[str] = []
        self.now = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
        # Cumulative weights, computed once: random.choices would otherwise add them up on every call.
        self.agency_weights = list(accumulate(a.weight for a in AGENCIES))
        self.other_codes = [c for c, _ in OTHER_CATEGORIES]
        self.other_weights = list(accumulate(w for _, w in OTHER_CATEGORIES))
        # Units report unevenly: a few large units file most reports (Zipf-like weights per agency).
        self.unit_weights = {a.code: list(accumulate(1 / (i + 1) ** 0.8 for i in range(len(a.units))))
                             for a in AGENCIES}

    def days(self) -> np.ndarray:
        """The Oslo reporting day of every report, sorted: more reports each year, few in July and at Christmas,
        fewer at weekends."""
        count = (LAST_DAY - FIRST_DAY).days + 1
        days = [FIRST_DAY + timedelta(days=i) for i in range(count)]
        weights = np.array([(1 + 0.6 * i / count)
                            * (0.35 if d.month == 7 else 0.6 if (d.month == 12 and d.day > 20) else 1.0)
                            * (0.25 if d.weekday() >= 5 else 1.0) for i, d in enumerate(days)])
        picks = np.random.default_rng(self.options.seed).choice(count, size=self.options.reports,
                                                                p=weights / weights.sum())
        picks.sort()
        return picks

    def chunks(self) -> Iterator[Tables]:
        """The whole history, a chunk of reports at a time."""
        day_index = self.days()
        tables = Tables()
        for report_id, offset in enumerate(day_index.tolist(), start=1):
            self.report(tables, report_id, FIRST_DAY + timedelta(days=offset))
            if report_id % self.options.chunk == 0:
                yield tables
                tables = Tables()
        if tables.rows["report"]:
            yield tables

    def report(self, tables: Tables, report_id: int, day: date) -> None:
        """One report, its child rows, its score, reviews and effective labels."""
        rng = self.rng
        local = datetime(day.year, day.month, day.day, tzinfo=OSLO) + timedelta(
            minutes=int(min(max(rng.gauss(11.5, 2.6), 0), 23.98) * 60))
        reported_at = local.astimezone(UTC)
        occurred_at = (reported_at - timedelta(minutes=rng.randrange(10, 14 * 24 * 60))
                       if rng.random() < 0.9 else None)
        year = day.year
        self.year_counters[year] = self.year_counters.get(year, 0) + 1
        external_id = f"BK-{year}-{self.year_counters[year]:06d}"

        unknown_unit = rng.random() < 0.015
        agency = rng.choices(AGENCIES, cum_weights=self.agency_weights)[0]
        unit = rng.choices(agency.units, cum_weights=self.unit_weights[agency.code])[0]
        kind = self._kind(agency)
        slots = {"unit": unit, "place": rng.choice(PLACES), "weeks": str(rng.randint(2, 9)),
                 "days": str(rng.randint(2, 30)), "month": rng.choice(("januar", "mars", "mai", "august", "oktober")),
                 "grade": str(rng.randint(1, 10)), "age": str(rng.randint(1, 17))}

        services: set[str] = set()
        groups: set[str] = set()
        if kind == "child":
            counterpart = rng.choice([c for c in COUNTERPARTS if c not in agency.own_services])
            slots["other"] = counterpart.replace("_", " ")
            title, description = rng.choice(CHILD_SCENARIOS)
            if rng.random() < 0.7:  # most reporters name both sides
                services = {rng.choice(agency.own_services), counterpart}
                if rng.random() < 0.15:
                    services.add(rng.choice(COUNTERPARTS))
            if rng.random() < 0.55:
                groups = set(rng.sample(agency.groups, min(len(agency.groups), rng.choice((1, 1, 2)))))
                groups &= set(CHILD_GROUPS)
            category = self._child_category(day)
        else:
            if kind == "adult_collaboration":
                title, description = rng.choice(ADULT_COLLABORATION)
                category = rng.choice(("kommunikasjon_og_samhandling", "mangler_kommunikasjon_informasjon",
                                       "tjenesteutovelse"))
                groups = {"eldre"} if rng.random() < 0.4 else set()
                services = {rng.choice(agency.own_services), rng.choice(("sykehus", "fastlege"))}
            else:
                category = rng.choices(self.other_codes, cum_weights=self.other_weights)[0]
                title, description = rng.choice(OTHER_TEXTS.get(category, COMMUNICATION_TEXTS))
                if rng.random() < 0.3:
                    groups = {rng.choice(agency.groups)}
                if rng.random() < 0.45:
                    services = set(rng.sample(agency.own_services, 1))
                    if rng.random() < 0.3:
                        services.add(rng.choice(COUNTERPARTS))
            slots.setdefault("other", "andre tjenester")
        label, category_code = self._label(category)
        title = title.format(**slots)
        extra = rng.sample(FOLLOW_UPS, rng.choice((1, 1, 2, 3)))
        description = " ".join([description.format(**slots), *(e.format(**slots) for e in extra),
                                f"Meldt av {unit}, saksnummer {external_id}."])

        if unknown_unit:
            unit_text = rng.choice(UNKNOWN_UNITS)
            department, agency_code, unit_name, unit_text_stored = None, None, unit_text, unit_text
        else:
            department, agency_code, unit_name, unit_text_stored = agency.department, agency.code, unit, None
            if rng.random() < 0.25:  # sent as "Etat for skole – Garnes skole"
                unit_text_stored = f"{agency.label} – {unit}"

        age_days = (LAST_DAY - day).days
        status = self._weighted(STATUS_OLD if age_days > 120 else STATUS_RECENT)
        draw = audit_draw("bkkvalitet", external_id)
        created_at = reported_at + timedelta(seconds=rng.randint(5, 600))
        suggestion, score = self._score(tables, report_id, kind, day, category_code, created_at, agency)
        verdict = self._reviews(tables, report_id, kind, day, category_code, suggestion, score, draw, created_at,
                                agency)
        effective = effective_labels(category_code, {"target_group": frozenset(groups), "service": frozenset(services)},
                                     suggestion, verdict)
        tables.add("report", report_id, "bkkvalitet", external_id, title, description, label, category_code,
                   occurred_at, reported_at, day.isoformat(), occurred_at or reported_at, department, agency_code,
                   unit_name, None, unit_text_stored, status, rng.choice(SEVERITIES), "1", 1,
                   f"{report_id:064x}", 0, 0, 0, created_at, created_at, effective.confirmed_category,
                   effective.confirmed_provenance, effective.suggested_category, effective.suggested_provenance, draw)
        for code in sorted(groups):
            tables.add("report_target_group", report_id, code)
        for code in sorted(services):
            tables.add("report_service", report_id, code)
        for (dimension, code), provenance in sorted(effective.labels.items()):
            # Triggers are off during the load (see load): the reporting date a trigger would copy is written here.
            tables.add("report_label", report_id, dimension, code, provenance, day.isoformat())
        if self.recent_external and rng.random() < 0.04:
            tables.add("report_link", report_id, rng.choice(self.recent_external[-2000:]))
        self.recent_external.append(external_id)
        if len(self.recent_external) > 4000:
            del self.recent_external[:2000]

    def _kind(self, agency: Agency) -> str:
        roll = self.rng.random()
        if roll < agency.child_share:
            return "child"
        if roll < agency.child_share + (0.04 if agency.department == "BEHO" else 0.005):
            return "adult_collaboration"
        return "other"

    def _child_category(self, day: date) -> str:
        if day >= CATEGORY_INTRODUCED and self.rng.random() < 0.55:
            return TARGET_CATEGORY
        return self._weighted(CHILD_CATEGORIES_BEFORE)

    def _label(self, code: str) -> tuple[str, str | None]:
        """The label as the reporter's system sends it, and the code it maps to (None when unmapped)."""
        rng = self.rng
        if rng.random() < 0.03:
            return rng.choice(UNKNOWN_CATEGORY_LABELS), None
        label = self.labels[code]
        if code.startswith(("informasjonsplikt", "mangler_", "relasjon_", "brudd_", "samhandling_barn")) \
                and rng.random() < 0.3:
            label = f"Kommunikasjon og samhandling – {label}"  # the Parent – Child path form
        return label, code

    def _weighted(self, pairs: Sequence[tuple[str, float]]) -> str:
        return self.rng.choices([p for p, _ in pairs], weights=[w for _, w in pairs])[0]

    def _score(self, tables: Tables, report_id: int, kind: str, day: date, category_code: str | None,
               created_at: datetime, agency: Agency) -> tuple[Suggestion | None, float | None]:
        """The classifier's suggestion, for reports stored since scoring began."""
        rng = self.rng
        if day < SCORING_FROM:
            return None, None
        if kind == "child":
            score = rng.betavariate(6, 1.6)
        elif kind == "adult_collaboration":
            score = rng.betavariate(2.2, 3)
        else:
            score = rng.betavariate(0.9, 9)
        flagged = score >= self.threshold and category_code != TARGET_CATEGORY
        likely_child = score >= self.threshold * 0.8
        groups = sorted(set(rng.sample([g for g in agency.groups if g in CHILD_GROUPS] or list(CHILD_GROUPS), 1))) \
            if likely_child else []
        services = sorted({rng.choice(agency.own_services), rng.choice(COUNTERPARTS[:12])}) if likely_child else []
        explanation = [{"term": "tilbakemelding", "weight": 0.61}, {"term": "barnevern", "weight": 0.42}] \
            if likely_child else [{"term": "falt", "weight": -0.38}]
        tables.add("report_score", report_id, self.model_version, round(score, 6), self.threshold, flagged, groups,
                   services, explanation, created_at + timedelta(seconds=1))
        return Suggestion(flagged, tuple(groups), tuple(services)), score

    def _reviews(self, tables: Tables, report_id: int, kind: str, day: date, category_code: str | None,
                 suggestion: Suggestion | None, score: float | None, draw: float, created_at: datetime,
                 agency: Agency) -> Verdict | None:
        """Advisers review most older flags, fewer recent ones, and part of the audit sample."""
        rng = self.rng
        if suggestion is None:
            return None
        age_days = (LAST_DAY - day).days
        audit_sample = not suggestion.flagged and category_code != TARGET_CATEGORY and draw < \
            self.options.audit_sample_share
        if suggestion.flagged:
            reviewed = rng.random() < (0.75 if age_days > 90 else 0.3)
        elif audit_sample:
            reviewed = rng.random() < (0.6 if age_days > 90 else 0.2)
        else:
            reviewed = False
        if not reviewed:
            return None
        true_case = kind == "child"
        if true_case:
            verdict = (Verdict(Decision.CONFIRM) if rng.random() < 0.85 else
                       Verdict(Decision.CORRECT, TARGET_CATEGORY,
                               tuple(sorted({rng.choice([g for g in agency.groups if g in CHILD_GROUPS]
                                                        or list(CHILD_GROUPS))}))))
        else:
            verdict = (Verdict(Decision.REJECT) if rng.random() < 0.9 else
                       Verdict(Decision.CORRECT, category_code or "kommunikasjon_og_samhandling"))
        at = created_at + timedelta(days=rng.randint(1, 40))
        history = [verdict]
        if rng.random() < 0.03:  # a first decision later superseded by a colleague's
            history.insert(0, Verdict(Decision.REJECT if true_case else Decision.CONFIRM))
        for step, item in enumerate(history):
            self.review_id += 1
            tables.add("review", self.review_id, report_id, item.decision.value, item.category_code,
                       list(item.target_groups) if item.target_groups is not None else None,
                       list(item.services) if item.services is not None else None, None, rng.choice(ADVISERS),
                       min(at + timedelta(days=step * 3), self.now), round(score or 0.0, 6), suggestion.flagged,
                       audit_sample, self.model_version)
        return history[-1]


# --------------------------------------------------------------------------------------------------
# The database


def admin_url(raw: str) -> URL:
    """The server's admin URL, refused unless it points at this machine."""
    url = make_url(raw)
    if url.host and url.host not in LOOPBACK:
        raise GenerateError(f"refusing a non-loopback database host: {url.host}")
    return url


def libpq(url: URL) -> str:
    """A psycopg connection string for a SQLAlchemy URL."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def database_url(admin: URL, name: str) -> URL:
    """The SQLAlchemy URL of a database on the admin's server."""
    return admin.set(drivername="postgresql+psycopg", database=name)


def marker(options: Options) -> str:
    """The database comment of a complete load: what a reuse must match."""
    return f"avvik gen_reports complete: reports={options.reports} seed={options.seed}"


def _check_name(name: str) -> None:
    if not name.startswith("avvik_bench_") or not name.replace("_", "").isalnum():
        raise GenerateError(f"refusing database name {name!r}: it must start with avvik_bench_")


def existing_marker(admin: URL, name: str) -> str | None:
    """The comment of the database, or None when it does not exist."""
    with psycopg.connect(libpq(admin), autocommit=True) as conn:
        row = conn.execute("SELECT coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database "
                           "WHERE datname = %s", (name,)).fetchone()
    return None if row is None else str(row[0])


def recreate(admin: URL, name: str) -> None:
    """Drop (if there) and create the bench database."""
    _check_name(name)
    with psycopg.connect(libpq(admin), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def register_model(url: URL) -> tuple[str, float]:
    """Register and activate the default model, as `avvik serve` does on a new installation."""
    from app.db import make_engine, make_sessionmaker
    from app.registry import service as registry
    from app.registry.bootstrap import default_model
    from app.settings import Settings

    engine = make_engine(url.render_as_string(hide_password=False))
    try:
        with make_sessionmaker(engine).begin() as session:
            model = default_model(Settings(_env_file=None).model_dir)
            registry.register(session, model, source="corpus")
            version = registry.activate_if_none(session, model.version, by="bench")
            return version, float(model.threshold)
    finally:
        engine.dispose()


def category_labels(dsn: str) -> dict[str, str]:
    """Category code -> label, from the taxonomy the migrations seeded."""
    with psycopg.connect(dsn) as conn:
        return dict(conn.execute("SELECT code, label FROM taxonomy_code WHERE kind = 'category'").fetchall())


def secondary_indexes(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    """(name, definition) of the loaded tables' indexes that back no constraint."""
    return [(str(n), str(d)) for n, d in conn.execute(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = 'public' AND i.tablename = ANY(%s) "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
        (list(LOADED_TABLES),)).fetchall()]


def load(url: URL, options: Options, log: Any = print) -> dict[str, Any]:
    """Generate and COPY the history into a migrated, empty database; returns row counts and timings."""
    dsn = libpq(url)
    version, threshold = register_model(url)
    generator = Generator(options, category_labels(dsn), version, threshold)
    started = time.perf_counter()
    totals = dict.fromkeys(LOADED_TABLES, 0)
    copy_seconds = 0.0
    with psycopg.connect(dsn) as conn:
        indexes = secondary_indexes(conn)
        for name, _ in indexes:
            conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
        conn.commit()
        # Rows are consistent by construction; skipping per-row foreign-key triggers makes COPY several times faster.
        conn.execute("SET session_replication_role = replica")
        for tables in generator.chunks():
            copy_started = time.perf_counter()
            with conn.cursor() as cursor:
                for table in LOADED_TABLES:
                    if not tables.rows[table]:
                        continue
                    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
                        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, COLUMNS[table])))
                    with cursor.copy(statement) as copy:
                        copy.write(tables.buffers[table].getvalue())
                    totals[table] += tables.rows[table]
            conn.commit()
            copy_seconds += time.perf_counter() - copy_started
            log(f"  {totals['report']:>9,} reports  {time.perf_counter() - started:6.1f} s")
        conn.execute("SET session_replication_role = DEFAULT")
        conn.execute("SET maintenance_work_mem = '256MB'")
        index_started = time.perf_counter()
        for _, definition in indexes:
            conn.execute(definition)
        # The estimate's summary rows and the score rows' review mark are written by triggers, which were off
        # during the load: the migrations' own backfill statements write them.
        for migration in ("0008_estimate_basis.py", "0013_review_queue_index.py"):
            conn.execute(migration_backfill(migration))
        for table, column in (("report", "id"), ("review", "id")):
            conn.execute(sql.SQL("SELECT setval(pg_get_serial_sequence({}, {}), (SELECT max({}) FROM {}))").format(
                sql.Literal(table), sql.Literal(column), sql.Identifier(column), sql.Identifier(table)))
        conn.commit()
        index_seconds = time.perf_counter() - index_started
    with psycopg.connect(dsn, autocommit=True) as conn:
        vacuum_started = time.perf_counter()
        conn.execute("VACUUM (ANALYZE)")
        vacuum_seconds = time.perf_counter() - vacuum_started
    return {"rows": totals, "seconds": round(time.perf_counter() - started, 1), "copy_seconds": round(copy_seconds, 1),
            "index_seconds": round(index_seconds, 1), "vacuum_seconds": round(vacuum_seconds, 1),
            "model_version": version}


def migration_backfill(name: str) -> str:
    """The statement with which a migration (its file name) fills what its triggers keep."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "migrations" / "versions" / name
    spec = importlib.util.spec_from_file_location(f"migration_{name.split('_')[0]}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(module.BACKFILL)


def revision(url: URL) -> str | None:
    """The database's Alembic revision."""
    with psycopg.connect(libpq(url)) as conn:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    return None if row is None else str(row[0])


def ensure(admin: URL, name: str, options: Options, reuse: bool, log: Any = print) -> URL:
    """The URL of a complete, migrated bench database: kept when `reuse` and it matches, else generated."""
    from app.migrate import upgrade

    _check_name(name)
    url = database_url(admin, name)
    if reuse and existing_marker(admin, name) == marker(options):
        before = revision(url)
        upgrade(url.render_as_string(hide_password=False))  # a migration added since the load runs on its rows
        if revision(url) != before:
            # New tables and indexes: visibility map and planner statistics, as after a load.
            with psycopg.connect(libpq(url), autocommit=True) as conn:
                conn.execute("VACUUM (ANALYZE)")
            log(f"migrated {name} from {before} to {revision(url)}, vacuumed and analysed")
        log(f"reusing {name} ({options.reports:,} reports, seed {options.seed})")
        return url
    log(f"generating {options.reports:,} reports into {name} (seed {options.seed})")
    recreate(admin, name)
    upgrade(url.render_as_string(hide_password=False))
    figures = load(url, options, log)
    log(f"loaded in {figures['seconds']} s (COPY {figures['copy_seconds']} s, indexes {figures['index_seconds']} s, "
        f"vacuum+analyze {figures['vacuum_seconds']} s): "
        + ", ".join(f"{table} {n:,}" for table, n in figures["rows"].items()))
    with psycopg.connect(libpq(admin), autocommit=True) as conn:
        conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(marker(options))))
    return url


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every bench script that needs the database shares."""
    parser.add_argument("--pg-url", default=DEFAULT_ADMIN_URL, help="admin URL of a loopback PostgreSQL server")
    parser.add_argument("--database", default=DEFAULT_DATABASE, help="bench database (must start with avvik_bench_)")
    parser.add_argument("--reports", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    parser.add_argument("--reuse", action="store_true", help="keep a complete database of the same size and seed")
    parser.add_argument("--chunk", type=int, default=50_000, help="reports per COPY transaction")
    args = parser.parse_args(argv)
    if args.reports < 1 or args.chunk < 1:
        parser.error("--reports and --chunk must be positive")
    try:
        ensure(admin_url(args.pg_url), args.database, Options(args.reports, args.seed, args.chunk), args.reuse)
    except GenerateError as exc:
        print(f"gen_reports: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
