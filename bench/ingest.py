"""Ingest benchmark: a real server on PostgreSQL against PostgreSQL's own COPY of the same rows.

What one run does, all on loopback and bounded:

1. creates a throwaway database (avvik_bench_<random>), migrates it and creates an integration API key;
2. generates N realistic deliveries (Norwegian text, codes from the migrated taxonomy, unique ids);
3. starts `avvik serve` on a free port as a subprocess and waits for /readyz;
4. measures POST /api/v1/reports/batch throughput (batches of 1,000, sequential by default) and the
   latency of single POST /api/v1/reports at 16 concurrent clients, on fresh external ids;
5. stops the server and measures the reference: COPY of the rows the server stored (report and its
   child tables) into a scratch copy of those tables with the same columns, indexes and keys;
6. prints batch/COPY as a ratio beside the aims (≥ 1/3; single POST p99 < 50 ms), with machine facts;
7. drops the database, also on errors and Ctrl-C.

    .venv/bin/python bench/ingest.py                      # defaults: 20,000 reports, 3,000 single POSTs
    .venv/bin/python bench/ingest.py --workers 2 --json bench/out/ingest.json

Server behaviour that a run compares is a `ServerOptions` field turned into AVVIK_* variables of the
server's environment (e.g. `--scoring on|off`), so a comparison is two runs with different flags;
`--scoring both` makes both runs (each on its own throwaway database) and prints their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import secrets
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql
from sqlalchemy.engine import URL, make_url

from app.migrate import upgrade

ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
BATCH_PATH = "/api/v1/reports/batch"
SINGLE_PATH = "/api/v1/reports"
BATCH_PREFIX, SINGLE_PREFIX, WARMUP_PREFIX = "BENCH-B-", "BENCH-S-", "BENCH-W-"
# The tables the server fills from the payload itself, loaded again by COPY as the reference.
REFERENCE_TABLES = ("report", "report_target_group", "report_service", "report_link")
REFERENCE_SCHEMA = "copy_ref"
Chunk = list[tuple[str, bytes, int]]  # (table, rows as COPY text, row count) for one batch's reports
AIM_RATIO = 1 / 3
AIM_P99_MS = 50.0
AIM_CLIENTS = 16
AIM_SCORING_SLOWDOWN = 0.20  # issue 4: scoring on arrival may slow ingest by at most 20 %
AIM_OBSERVABILITY_SLOWDOWN = 0.05  # issue 16: request log and metrics may cost at most 5 %


class BenchError(RuntimeError):
    """The benchmark could not run or the server answered something unexpected."""


# --------------------------------------------------------------------------------------------------
# Options


@dataclass(frozen=True)
class ServerOptions:
    """What the server under test runs with; each field becomes part of its environment."""

    workers: int = 1
    scoring: bool = False
    model_dir: str | None = None  # where a scoring server finds (or builds) its model
    observability: bool = True  # the JSON request log (written to the server's log file) and the metrics

    def environment(self, database_url: str, workdir: Path) -> dict[str, str]:
        """AVVIK_* variables for `avvik serve`; everything else is inherited."""
        env = {
            "AVVIK_DATABASE_URL": database_url,
            # Info: the request log is part of what a production server does, and it goes to a file here.
            "AVVIK_LOG_LEVEL": "info",
            "AVVIK_LOG_FORMAT": "json",
            "AVVIK_REQUEST_LOG": "true" if self.observability else "false",
            "AVVIK_METRICS_ENABLED": "true" if self.observability else "false",
            # One key sends every request: the per-key limit would measure the limiter, not ingest.
            "AVVIK_RATE_LIMIT_PER_MINUTE": str(10**9),
            "AVVIK_SCORING_ENABLED": "true" if self.scoring else "false",
        }
        if self.scoring:
            env["AVVIK_MODEL_DIR"] = self.model_dir or str(workdir / "model")
        return env


@dataclass(frozen=True)
class BenchOptions:
    """What the client side does."""

    reports: int = 20_000
    batch_size: int = 1_000
    batch_clients: int = 1
    singles: int = 3_000
    clients: int = AIM_CLIENTS
    warmup: int = 200
    seed: int = 2026
    start_timeout: float = 300.0
    copy_repeats: int = 3


# --------------------------------------------------------------------------------------------------
# Throwaway database and server


def loopback_url(raw: str) -> URL:
    """The admin URL, refused unless it points at this machine."""
    url = make_url(raw)
    if url.host and url.host not in LOOPBACK:
        raise BenchError(f"refusing a non-loopback database host: {url.host}")
    return url


def libpq(url: URL) -> str:
    """A psycopg connection string for a SQLAlchemy URL."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def throwaway_database(admin: URL) -> Iterator[URL]:
    """Create an empty database and drop it afterwards, whatever happens in between."""
    name = f"avvik_bench_{secrets.token_hex(4)}"
    with psycopg.connect(libpq(admin), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield admin.set(drivername="postgresql+psycopg", database=name)
    finally:
        with psycopg.connect(libpq(admin), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def avvik_command() -> str:
    """The `avvik` console script of the interpreter running this file (the project's venv)."""
    beside = Path(sys.executable).parent / "avvik"
    return str(beside if beside.exists() else ROOT / ".venv" / "bin" / "avvik")


def create_api_key(env: dict[str, str], workdir: Path) -> str:
    """An integration key in the bench database, made the way an operator makes one."""
    done = subprocess.run(
        [avvik_command(), "apikey", "create", "--name", "bench-ingest", "--role", "integration"],
        env=env, cwd=workdir, capture_output=True, text=True, timeout=120, check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"avvik apikey create failed: {done.stderr.strip()[-2000:]}")
    return done.stdout.strip().splitlines()[-1]


@dataclass
class Server:
    """A running `avvik serve` subprocess."""

    process: subprocess.Popen[bytes]
    base_url: str
    log: Path

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server's output, for error messages."""
        text = self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@contextmanager
def running_server(env: dict[str, str], options: ServerOptions, workdir: Path, timeout: float) -> Iterator[Server]:
    """Start the server in its own process group, wait until it is ready, and always stop it."""
    port = free_port()
    log = workdir / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [avvik_command(), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(options.workers)],
            env=env, cwd=workdir, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    server = Server(process, f"http://127.0.0.1:{port}", log)
    try:
        wait_ready(server, timeout)
        yield server
    finally:
        stop(process)


def wait_ready(server: Server, timeout: float) -> None:
    """Poll /readyz until 200; fail when the process exits or the deadline passes."""
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=server.base_url, timeout=5.0) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise BenchError(f"server exited with {server.process.returncode}:\n{server.log_tail()}")
            try:
                if client.get("/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
    raise BenchError(f"server not ready after {timeout:.0f} s:\n{server.log_tail()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the server (and any workers) gracefully, then forcibly."""
    if process.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(process.pid, sig)  # the group the server leads: it and its workers only
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


# --------------------------------------------------------------------------------------------------
# Realistic deliveries


@dataclass(frozen=True)
class Taxonomy:
    """The active codes and labels of the migrated taxonomy."""

    category_labels: tuple[str, ...]
    target_groups: tuple[str, ...]
    children_groups: tuple[str, ...]
    services: tuple[str, ...]
    service_names: dict[str, str]  # code -> how a person writes it in running text
    agencies: tuple[tuple[str, str], ...]  # (code, label)
    departments: tuple[str, ...]  # labels


def load_taxonomy(dsn: str) -> Taxonomy:
    """Read the codes a delivery may use from the database the migrations seeded."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT kind, code, label, parent_code, children_and_youth FROM taxonomy_code "
            "WHERE retired_at IS NULL ORDER BY kind, code"
        ).fetchall()
    labels = {code: label for kind, code, label, _, _ in rows if kind == "category"}
    categories: list[str] = []
    for kind, _, label, parent, _ in rows:
        if kind == "category":
            # The quality system sends a subcategory as a "Parent – Child" path, or by its label alone.
            categories.append(label if parent is None else f"{labels[parent]} – {label}")
            if parent is not None and label != "Annet":
                categories.append(label)
    return Taxonomy(
        category_labels=tuple(categories),
        target_groups=tuple(code for kind, code, _, _, _ in rows if kind == "target_group"),
        children_groups=tuple(code for kind, code, _, _, cy in rows if kind == "target_group" and cy),
        services=tuple(code for kind, code, _, _, _ in rows if kind == "service"),
        service_names={code: label if label[:2].isupper() else label.lower()
                       for kind, code, label, _, _ in rows if kind == "service"},
        agencies=tuple((code, label) for kind, code, label, _, _ in rows if kind == "agency"),
        departments=tuple(label for kind, _, label, _, _ in rows if kind == "department"),
    )


PLACES = ("Garnes", "Åsane", "Fana", "Laksevåg", "Arna", "Ytrebygda", "Fyllingsdalen", "Årstad", "Bergenhus",
          "Landås", "Nattland", "Slettebakken", "Sandsli", "Kråkenes", "Loddefjord", "Tertnes", "Ulset",
          "Hordvik", "Ytre Arna", "Indre Arna", "Møhlenpris", "Sandviken", "Nesttun", "Paradis", "Kalfaret")
UNIT_KINDS = {
    "skole": ("skole", "ungdomsskole", "barneskole"),
    "barnehage": ("barnehage", "friluftsbarnehage"),
    "barn_og_familie": ("barneverntjeneste", "familiesenter", "helsestasjon"),
    "helsetjenester": ("helsestasjon", "legevakt", "skolehelsetjeneste"),
    "psykisk_helse_rus": ("ruspoliklinikk", "psykisk helsetjeneste"),
    "sosiale_tjenester": ("NAV-kontor", "bydelskontor"),
    "spesialpedagogiske_tjenester": ("PPT", "spesialpedagogisk team"),
}
UNKNOWN_CATEGORIES = ("Uønsket hendelse", "Avvik - annet", "Samhandling/kommunikasjon", "Rutinesvikt")
STATUSES = ("registrert", "registrert", "under_behandling", "lukket")
SEVERITIES = (None, None, "lav", "middels", "høy")
ROLES = ("kontaktlærer", "helsesykepleier", "saksbehandler", "pedagogisk leder", "fastlegen", "rektor",
         "enhetsleder", "miljøterapeut", "koordinator", "avdelingsleder")
TITLES = (
    "Manglende informasjon fra {s1} til {s2}",
    "Bekymringsmelding ikke fulgt opp",
    "Ikke varslet om utskrivning fra {s1}",
    "Barn uten tilbud etter flytting",
    "Forsinket oppfølging av ungdom i {place}",
    "Uklar ansvarsfordeling mellom {s1} og {s2}",
    "Tolk ikke bestilt til foreldremøte",
    "Samtykke manglet, informasjon ble ikke delt",
    "Melding sendt til feil mottaker",
    "Avtalt møte ble ikke gjennomført",
    "Vedtak ikke formidlet til skolen",
    "Individuell plan ikke oppdatert",
    "Overføring fra barnehage til skole mangelfull",
    "Foreldre fikk motstridende beskjeder",
)
OPENINGS = (
    "Elev i {grade}. klasse har hatt høyt fravær siden {month}, og {unit} har ikke fått kontakt med foresatte.",
    "Barnet ble hentet av en annen voksen enn avtalt, uten at {unit} hadde fått beskjed om endringen.",
    "{s1} sendte bekymringsmelding {day}, men fikk ingen tilbakemelding innen fristen på tre uker.",
    "Ungdommen ble skrevet ut fra {s1} {day} uten at {s2} eller foresatte var varslet på forhånd.",
    "Foreldrene opplyser at de har forsøkt å få time hos {s1} i {weeks} uker uten å få svar.",
    "Det var ikke avklart hvem som hadde ansvaret for oppfølgingen etter samarbeidsmøtet {day}.",
    "En familie med tre barn flyttet til {place} i {month}, og barna sto uten skole- og barnehageplass.",
    "Gutten på {age} år har vedtak om tilrettelegging, men vedtaket var ikke kjent for {role}.",
    "Jenta på {age} år ble sendt hjem fra {unit} uten at avtalt kontaktperson ble varslet.",
    "I ansvarsgruppemøtet {day} møtte ikke representanten fra {s1}, og saken ble utsatt.",
)
DETAILS = (
    "Dette førte til at tiltaket ble forsinket med {weeks} uker.",
    "Familien måtte forklare situasjonen sin på nytt for tre ulike tjenester.",
    "Barnet sto uten tilbud i {days} dager.",
    "Informasjonen nådde ikke fram til {role} før etter høstferien.",
    "Rutinen for overføring av opplysninger mellom {s1} og {s2} er ikke kjent for alle ansatte.",
    "Meldingen ble sendt til en felles postkasse i fagsystemet som ingen følger opp i ferien.",
    "Samtykke fra foresatte var ikke innhentet, og derfor ble opplysningene ikke delt.",
    "Vikaren var ikke informert om tilretteleggingen og fulgte vanlig timeplan.",
    "Tolk var ikke bestilt, og møtet måtte gjennomføres uten at mor forsto alt som ble sagt.",
    "{role} hadde ikke tilgang til journalen og kjente ikke til den tidligere kartleggingen.",
    "Foresatte ga uttrykk for at de følte seg overlatt til seg selv i ventetiden.",
    "Det finnes ingen felles oversikt over hvilke tjenester barnet mottar.",
    "Henvisningen ble returnert fordi den manglet opplysninger som {s1} allerede hadde.",
    "Saken ble registrert i to systemer med ulik informasjon.",
)
ACTIONS = (
    "Saken er tatt opp med enhetsleder, og rutinen gjennomgås på neste personalmøte.",
    "Vi har bedt om et felles møte med {s1} og foresatte innen to uker.",
    "Koordinerende enhet er kontaktet for å få på plass en fast koordinator.",
    "{role} følger opp saken og melder tilbake til kvalitetsrådgiver.",
    "Avviket meldes for å synliggjøre at samhandlingen mellom tjenestene ikke fungerer godt nok.",
    "Det er avtalt at {s2} skal få kopi av alle vedtak framover.",
    "Vi foreslår at rutinen for overgang mellom {s1} og {s2} revideres.",
)
CONTACT = ("Mor kan nås på tlf. {phone}.", "Far ønsker å bli kontaktet på {phone} etter kl. 15.")
MONTHS = ("januar", "februar", "mars", "april", "mai", "juni", "august", "september", "oktober", "november")
WEEKDAYS = ("mandag", "tirsdag", "onsdag", "torsdag", "fredag")
OSLO_WINTER, OSLO_SUMMER = timezone(timedelta(hours=1)), timezone(timedelta(hours=2))


class ReportFactory:
    """Deliveries as BkKvalitet sends them, varied but reproducible from a seed."""

    def __init__(self, taxonomy: Taxonomy, seed: int) -> None:
        self.taxonomy = taxonomy
        self.rng = random.Random(seed)
        self.issued: list[str] = []

    def report(self, external_id: str) -> dict[str, Any]:
        """One valid delivery with a unique external id."""
        rng, tax = self.rng, self.taxonomy
        agency_code, agency_label = rng.choice(tax.agencies)
        unit = f"{rng.choice(PLACES)} {rng.choice(UNIT_KINDS.get(agency_code, ('avdeling',)))}"
        services = rng.sample(tax.services, rng.choice((1, 1, 2, 2, 3, 4)))
        slots = {"unit": unit, "place": rng.choice(PLACES), "role": rng.choice(ROLES),
                 "s1": tax.service_names[services[0]], "s2": tax.service_names[rng.choice(tax.services)]}
        occurred = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=rng.randrange(0, 680 * 24 * 60))
        reported = occurred + timedelta(minutes=rng.randrange(30, 10 * 24 * 60))
        payload: dict[str, Any] = {
            "external_id": external_id,
            "title": self._fill(rng.choice(TITLES), slots),
            "description": self._description(slots),
            "reported_category": self._category(),
            "occurred_at": _oslo(occurred) if rng.random() < 0.9 else None,
            "reported_at": _oslo(reported),
            "reporting_unit": self._unit(agency_label, unit),
            "status": rng.choice(STATUSES),
            "severity": rng.choice(SEVERITIES),
            "target_groups": self._target_groups(),
            "services_involved": services,
            "related_external_ids": rng.sample(self.issued[-500:], 1) if self.issued and rng.random() < 0.1
            else [],
            "source_version": rng.randint(1, 4) if rng.random() < 0.7 else _oslo(reported + timedelta(hours=2)),
        }
        self.issued.append(external_id)
        return payload

    def _description(self, slots: dict[str, str]) -> str:
        rng = self.rng
        target = rng.randint(300, 800)
        sentences = [self._fill(rng.choice(OPENINGS), slots)]
        pool = [*rng.sample(DETAILS, len(DETAILS)), *rng.sample(ACTIONS, 2)]
        if rng.random() < 0.05:
            pool.insert(rng.randrange(len(pool)), self._fill(rng.choice(CONTACT), slots))
        for sentence in pool:
            text = self._fill(sentence, slots)
            if len(" ".join(sentences)) >= target or len(" ".join([*sentences, text])) > 800:
                break
            sentences.append(text)
        return " ".join(sentences)

    def _fill(self, template: str, slots: dict[str, str]) -> str:
        rng = self.rng
        values = {**slots, "grade": str(rng.randint(1, 10)), "month": rng.choice(MONTHS),
                  "day": f"{rng.choice(WEEKDAYS)} {rng.randint(1, 28)}. {rng.choice(MONTHS)}",
                  "weeks": str(rng.randint(2, 9)), "days": str(rng.randint(3, 40)), "age": str(rng.randint(1, 17)),
                  "phone": f"{rng.choice('49')}{rng.randint(0, 9)}{rng.randint(0, 9)} {rng.randint(10, 99)} "
                           f"{rng.randint(100, 999)}"}
        text = template.format(**values)
        return text[0].upper() + text[1:]

    def _category(self) -> str:
        rng = self.rng
        if rng.random() < 0.03:
            return rng.choice(UNKNOWN_CATEGORIES)
        return rng.choice(self.taxonomy.category_labels)

    def _unit(self, agency_label: str, unit: str) -> dict[str, str] | str:
        roll = self.rng.random()
        if roll < 0.7:
            return {"agency": agency_label, "unit": unit}
        if roll < 0.9:
            return f"{agency_label} – {unit}"
        return {"department": self.rng.choice(self.taxonomy.departments), "unit": unit}

    def _target_groups(self) -> list[str]:
        rng, tax = self.rng, self.taxonomy
        n = rng.choice((0, 1, 1, 1, 2, 2, 3))
        pool = tax.children_groups if rng.random() < 0.8 else tax.target_groups
        return rng.sample(pool, min(n, len(pool)))


def _oslo(moment: datetime) -> str:
    """An ISO time with Oslo's offset (summer time roughly April to October)."""
    return moment.astimezone(OSLO_SUMMER if 4 <= moment.month <= 10 else OSLO_WINTER).isoformat()


# --------------------------------------------------------------------------------------------------
# HTTP measurements


@dataclass
class BatchResult:
    """Batch ingest throughput."""

    reports: int
    batches: int
    clients: int
    seconds: float
    reports_per_s: float
    batch_p50_ms: float
    batch_max_ms: float


@dataclass
class LatencyResult:
    """Latency of one kind of request at a fixed concurrency."""

    requests: int
    clients: int
    seconds: float
    requests_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation of sorted values."""
    if not sorted_values:
        return float("nan")
    position = (len(sorted_values) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def latency_result(latencies: list[float], clients: int, seconds: float) -> LatencyResult:
    """Summarise request latencies (seconds) in milliseconds."""
    values = sorted(v * 1000 for v in latencies)
    return LatencyResult(len(values), clients, seconds, len(values) / seconds, percentile(values, 50),
                         percentile(values, 90), percentile(values, 99), values[-1])


async def run_workers(jobs: Sequence[Any], clients: int, work: Callable[[Any], Any]) -> float:
    """Run `work(job)` for every job with `clients` concurrent workers; the wall time in seconds."""
    queue = iter(jobs)

    async def worker() -> None:
        for job in queue:  # a shared iterator: each job is taken by exactly one worker
            await work(job)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return time.perf_counter() - start


def client_for(server: Server, key: str, clients: int) -> httpx.AsyncClient:
    """One connection per concurrent worker, authenticated as the integration."""
    return httpx.AsyncClient(
        base_url=server.base_url,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        limits=httpx.Limits(max_connections=clients, max_keepalive_connections=clients),
        timeout=httpx.Timeout(300.0),
    )


def expect(response: httpx.Response, status: int) -> None:
    """Fail the run on any answer but the expected one: figures with errors are not figures."""
    if response.status_code != status:
        raise BenchError(f"{response.request.method} {response.request.url.path} answered "
                         f"{response.status_code}: {response.text[:500]}")


async def post_batches(server: Server, key: str, bodies: list[bytes], sizes: list[int], clients: int) -> BatchResult:
    """POST pre-serialised batches; every item must come back `created`."""
    timings: list[float] = []

    async with client_for(server, key, clients) as client:
        async def send(job: tuple[bytes, int]) -> None:
            body, size = job
            start = time.perf_counter()
            response = await client.post(BATCH_PATH, content=body)
            timings.append(time.perf_counter() - start)
            expect(response, 200)
            counts = response.json()["counts"]
            if counts != {"created": size}:
                raise BenchError(f"batch of {size} answered counts {counts}")

        seconds = await run_workers(list(zip(bodies, sizes, strict=True)), clients, send)
    ordered = sorted(t * 1000 for t in timings)
    total = sum(sizes)
    return BatchResult(total, len(bodies), clients, seconds, total / seconds, percentile(ordered, 50), ordered[-1])


async def post_singles(server: Server, key: str, bodies: list[bytes], clients: int) -> LatencyResult:
    """POST pre-serialised single reports from `clients` concurrent workers; each must be 201."""
    latencies: list[float] = []

    async with client_for(server, key, clients) as client:
        async def send(body: bytes) -> None:
            start = time.perf_counter()
            response = await client.post(SINGLE_PATH, content=body)
            latencies.append(time.perf_counter() - start)
            expect(response, 201)

        seconds = await run_workers(bodies, clients, send)
    return latency_result(latencies, clients, seconds)


async def get_floor(server: Server, key: str, requests: int, clients: int) -> LatencyResult:
    """GET /healthz at the same concurrency: what this client, HTTP and the framework cost alone."""
    latencies: list[float] = []

    async with client_for(server, key, clients) as client:
        async def send(_: int) -> None:
            start = time.perf_counter()
            response = await client.get("/healthz")
            latencies.append(time.perf_counter() - start)
            expect(response, 200)

        seconds = await run_workers(range(requests), clients, send)
    return latency_result(latencies, clients, seconds)


# --------------------------------------------------------------------------------------------------
# The reference: PostgreSQL's COPY


@dataclass
class CopyResult:
    """COPY of the same rows into tables of the same shape."""

    reports: int
    rows: dict[str, int]
    transactions: int
    seconds: float
    reports_per_s: float
    runs_seconds: list[float] = field(default_factory=list)  # every run; `seconds` is their median


def create_reference_tables(dsn: str) -> None:
    """Scratch copies of the report tables: same columns, defaults, checks, indexes and foreign keys."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(REFERENCE_SCHEMA)))
        for table in REFERENCE_TABLES:
            foreign_key = sql.SQL("") if table == "report" else sql.SQL(
                ", FOREIGN KEY (report_id) REFERENCES {}.report (id) ON DELETE CASCADE"
            ).format(sql.Identifier(REFERENCE_SCHEMA))
            conn.execute(sql.SQL("CREATE TABLE {}.{} (LIKE public.{} INCLUDING ALL{})").format(
                sql.Identifier(REFERENCE_SCHEMA), sql.Identifier(table), sql.Identifier(table), foreign_key))


def export_rows(dsn: str, prefix: str, chunk_size: int) -> tuple[list[Chunk], int]:
    """The rows the server stored for these reports, as COPY text, in chunks of `chunk_size` reports."""
    chunks = []
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        ids = [row[0] for row in cur.execute(
            "SELECT id FROM report WHERE external_id LIKE %s ORDER BY id", (prefix + "%",))]
        for start in range(0, len(ids), chunk_size):
            wanted = sql.Literal(ids[start:start + chunk_size])
            chunk = []
            for table in REFERENCE_TABLES:
                key = sql.Identifier("id" if table == "report" else "report_id")
                statement = sql.SQL("COPY (SELECT * FROM public.{} WHERE {} = ANY({}) ORDER BY {}) TO STDOUT").format(
                    sql.Identifier(table), key, wanted, key)
                with cur.copy(statement) as copy:
                    data = b"".join(bytes(block) for block in copy)
                chunk.append((table, data, data.count(b"\n")))
            chunks.append(chunk)
    return chunks, len(ids)


def copy_reference(conn: psycopg.Connection[Any], chunks: list[Chunk], reports: int) -> CopyResult:
    """Load the exported rows with COPY FROM STDIN, one transaction per chunk (as the batches commit)."""
    with conn.cursor() as cur:
        start = time.perf_counter()
        for chunk in chunks:
            with conn.transaction():
                for table, data, _ in chunk:
                    if data:
                        statement = sql.SQL("COPY {}.{} FROM STDIN").format(
                            sql.Identifier(REFERENCE_SCHEMA), sql.Identifier(table))
                        with cur.copy(statement) as copy:
                            copy.write(data)
        seconds = time.perf_counter() - start
        loaded = cur.execute(sql.SQL("SELECT count(*) FROM {}.report").format(
            sql.Identifier(REFERENCE_SCHEMA))).fetchone()
    if loaded is None or loaded[0] != reports:
        raise BenchError(f"COPY loaded {loaded} reports, expected {reports}")
    rows = {table: sum(n for chunk in chunks for t, _, n in chunk if t == table) for table in REFERENCE_TABLES}
    return CopyResult(reports, rows, len(chunks), seconds, reports / seconds)


def truncate_reference_tables(dsn: str) -> None:
    """Empty the reference tables before a run."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(
            sql.Identifier(REFERENCE_SCHEMA, table) for table in REFERENCE_TABLES)))


def checkpoint(dsn: str) -> None:
    """Start a timed phase from a clean checkpoint, so neither side pays for the other's dirty pages."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CHECKPOINT")


# --------------------------------------------------------------------------------------------------
# Machine facts and CPU accounting


def machine_facts(dsn: str) -> dict[str, Any]:
    """What the figures depend on: CPUs, memory, Python, PostgreSQL and its durability settings."""
    names = ("server_version", "shared_buffers", "synchronous_commit", "fsync", "max_wal_size")
    with psycopg.connect(dsn) as conn:
        setting = {name: str(row[0]) if (row := conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(name)))
                                          .fetchone()) else "?" for name in names}
    cpu_model = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines()
                      if line.startswith("model name")), platform.processor() or "unknown")
    mem_kb = next((int(line.split()[1]) for line in _read("/proc/meminfo").splitlines()
                   if line.startswith("MemTotal:")), 0)
    return {
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu": cpu_model,
        "memory_gib": round(mem_kb / 2**20, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "postgresql": setting.pop("server_version"),
        "postgresql_settings": setting,
        "packages": {name: _version(name) for name in ("fastapi", "uvicorn", "pydantic", "sqlalchemy", "psycopg",
                                                        "httpx")},
    }


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


@dataclass
class CpuMeter:
    """CPU seconds spent by the bench client, the server, PostgreSQL and everything else on the machine.

    "other" is the machine's busy time minus the three: anything above a few percent means another
    program competed for the CPUs and the figures are pessimistic. PostgreSQL's share counts its shared
    processes (postmaster, writers) and the backends of the bench's own database, not backends serving
    other databases on the same server; the postmaster's reaped children are counted whoever they served.
    """

    server_group: int
    database: str | None = None
    samples: dict[str, dict[str, float]] = field(default_factory=dict)

    def read(self) -> dict[str, float]:
        """Cumulative CPU seconds per party, from Linux /proc (zeros elsewhere)."""
        ticks = os.sysconf("SC_CLK_TCK")
        totals = {"client": 0.0, "server": 0.0, "postgres": 0.0}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            text = _read(str(stat))
            if not text:
                continue
            name = text[text.find("(") + 1:text.rfind(")")]
            rest = text[text.rfind(")") + 2:].split()
            # utime, stime and those of exited children (the postmaster's reaped backends, reaped workers)
            cpu = sum(int(v) for v in rest[11:15]) / ticks
            if int(text.split(" ", 1)[0]) == os.getpid():
                totals["client"] += cpu
            elif int(rest[2]) == self.server_group:
                totals["server"] += cpu
            elif name == "postgres" and self._ours(int(text.split(" ", 1)[0])):
                totals["postgres"] += cpu
        busy = machine_busy_seconds()
        if busy is not None:
            totals["other"] = busy - totals["client"] - totals["server"] - totals["postgres"]
        return totals

    def _ours(self, pid: int, depth: int = 0) -> bool:
        """Whether a PostgreSQL process works for this bench (or for everyone)."""
        if self.database is None:
            return True
        title = _read(f"/proc/{pid}/cmdline").replace("\0", " ").strip()
        if not title.startswith("postgres: "):
            return True  # the postmaster
        activity = title.split(": ", 2)[-1]
        if activity.startswith("parallel worker for PID ") and depth == 0:
            leader = activity.removeprefix("parallel worker for PID ").split()[0]
            return leader.isdigit() and self._ours(int(leader), depth + 1)
        words = activity.split()
        # A backend reads "user database host(port) state"; shared processes have no client address.
        if len(words) >= 3 and (words[2].endswith(")") or words[2] == "[local]"):
            return words[1] == self.database
        return True

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Record the CPU each party spent during a phase, and the phase's wall time."""
        before, start = self.read(), time.perf_counter()
        yield
        after, wall = self.read(), time.perf_counter() - start
        # A phase run several times (the COPY reference) adds up.
        earlier = self.samples.get(name, {})
        self.samples[name] = {"wall": round(earlier.get("wall", 0.0) + wall, 2),
                              **{party: round(earlier.get(party, 0.0) + max(after[party] - before[party], 0.0), 2)
                                 for party in after}}


def machine_busy_seconds() -> float | None:
    """CPU seconds all CPUs have been busy since boot (Linux), or None."""
    fields = _read("/proc/stat").split("\n", 1)[0].split()[1:]
    if len(fields) < 8:
        return None
    return sum(int(v) for i, v in enumerate(fields[:8]) if i not in (3, 4)) / os.sysconf("SC_CLK_TCK")  # not idle


def background_load(seconds: float = 2.0) -> float | None:
    """How many CPUs' worth of work other programs do right now (before anything of ours runs)."""
    before = machine_busy_seconds()
    time.sleep(seconds)
    after = machine_busy_seconds()
    return None if before is None or after is None else round((after - before) / seconds, 2)


# --------------------------------------------------------------------------------------------------
# The run


def encode(payload: object) -> bytes:
    """JSON as the client sends it (serialised before the clock starts)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@dataclass
class Workload:
    """Every request body of a run, serialised up front; external ids never repeat across phases."""

    warm_batch: bytes
    warm_batch_size: int
    warm_singles: list[bytes]
    batch_bodies: list[bytes]
    batch_sizes: list[int]
    singles: list[bytes]
    stats: dict[str, float]


def build_workload(factory: ReportFactory, options: BenchOptions) -> Workload:
    """Warm-up, batch and single-POST deliveries from one seeded factory."""
    warm = [factory.report(f"{WARMUP_PREFIX}{i:07d}") for i in range(2 * options.warmup)]
    items = [factory.report(f"{BATCH_PREFIX}{i:07d}") for i in range(options.reports)]
    groups = [items[i:i + options.batch_size] for i in range(0, len(items), options.batch_size)]
    bodies = [encode({"reports": group}) for group in groups]
    lengths = [len(item["description"]) for item in items]
    return Workload(
        warm_batch=encode({"reports": warm[:options.warmup]}),
        warm_batch_size=options.warmup,
        warm_singles=[encode(item) for item in warm[options.warmup:]],
        batch_bodies=bodies,
        batch_sizes=[len(group) for group in groups],
        singles=[encode(factory.report(f"{SINGLE_PREFIX}{i:07d}")) for i in range(options.singles)],
        stats={"description_chars_min": min(lengths), "description_chars_mean": round(statistics.mean(lengths)),
               "description_chars_max": max(lengths),
               "batch_body_mib_mean": round(statistics.mean(map(len, bodies)) / 2**20, 2)},
    )


def run(admin: URL, server_options: ServerOptions, options: BenchOptions) -> dict[str, Any]:
    """Everything between creating and dropping the throwaway database; returns the figures."""
    with tempfile.TemporaryDirectory(prefix="avvik-bench-") as tmp, throwaway_database(admin) as url:
        workdir = Path(tmp)
        dsn = libpq(url)
        database_url = url.render_as_string(hide_password=False)
        upgrade(database_url)
        env = {**os.environ, **server_options.environment(database_url, workdir)}
        key = create_api_key(env, workdir)
        machine = machine_facts(dsn)
        machine["busy_cpus_before_start"] = background_load()
        if (machine["busy_cpus_before_start"] or 0) > 0.2:
            print(f"warning: other programs keep {machine['busy_cpus_before_start']} CPUs busy; "
                  "the figures will be pessimistic", file=sys.stderr)
        work = build_workload(ReportFactory(load_taxonomy(dsn), options.seed), options)
        print(f"generated {options.reports:,} + {options.singles:,} reports (descriptions "
              f"{work.stats['description_chars_min']}–{work.stats['description_chars_max']} chars)")

        with running_server(env, server_options, workdir, options.start_timeout) as server:
            meter = CpuMeter(server.process.pid, url.database)
            print(f"server ready at {server.base_url} ({server_options.workers} worker(s)); warming up")
            asyncio.run(post_batches(server, key, [work.warm_batch], [work.warm_batch_size], 1))
            asyncio.run(post_singles(server, key, work.warm_singles, options.clients))

            print(f"batch ingest: {len(work.batch_bodies)} batches of ≤{options.batch_size:,}, "
                  f"{options.batch_clients} client(s)")
            checkpoint(dsn)
            with meter.phase("batch"):
                batch = asyncio.run(post_batches(server, key, work.batch_bodies, work.batch_sizes,
                                                 options.batch_clients))
            with meter.phase("healthz"):
                floor = asyncio.run(get_floor(server, key, min(options.singles, 2_000), options.clients))
            print(f"single POST: {options.singles:,} requests from {options.clients} clients")
            checkpoint(dsn)
            with meter.phase("single"):
                single = asyncio.run(post_singles(server, key, work.singles, options.clients))

        print("COPY reference (server stopped)")
        chunks, reports = export_rows(dsn, BATCH_PREFIX, options.batch_size)
        if reports != options.reports:
            raise BenchError(f"the server stored {reports} of {options.reports} batch reports")
        create_reference_tables(dsn)
        # The reference lasts about a second, so one busy moment on the machine would move the ratio:
        # it is loaded several times (emptied and checkpointed in between) and the median run counts.
        runs = []
        for _ in range(options.copy_repeats):
            truncate_reference_tables(dsn)
            # Connected before the phase starts, so that its backend's CPU is counted while it lives.
            with psycopg.connect(dsn, autocommit=True) as conn:
                checkpoint(dsn)
                with meter.phase("copy"):
                    runs.append(copy_reference(conn, chunks, reports))
        reference = sorted(runs, key=lambda r: r.seconds)[len(runs) // 2]
        reference.runs_seconds = [round(r.seconds, 3) for r in runs]

    ratio = batch.reports_per_s / reference.reports_per_s
    return {
        "date": datetime.now(UTC).date().isoformat(),
        "command": shlex.join([os.path.relpath(sys.executable, ROOT), *sys.argv]),
        "machine": machine,
        "server": asdict(server_options),
        "options": asdict(options),
        "payload": work.stats,
        "batch": asdict(batch),
        "copy": asdict(reference),
        "ratio_batch_to_copy": ratio,
        "single": asdict(single),
        "healthz_floor": asdict(floor),
        "cpu_seconds": meter.samples,
        # Less sensitive to other programs than wall time: what one report (or request) costs each party.
        "cpu_ms_per_item": {phase: {party: round(1000 * meter.samples[phase][party] / n, 3)
                                    for party in ("client", "server", "postgres")}
                            for phase, n in (("batch", options.reports), ("single", options.singles),
                                             ("copy", reports * options.copy_repeats))},
        # The latency aim is stated for 16 concurrent clients; other concurrencies are not judged.
        "aims": {"ratio_at_least": AIM_RATIO, "ratio_met": ratio >= AIM_RATIO,
                 "single_p99_ms_below": AIM_P99_MS, "single_p99_clients": AIM_CLIENTS,
                 "single_p99_met": single.p99_ms < AIM_P99_MS if options.clients == AIM_CLIENTS else None},
    }


def render(figures: dict[str, Any]) -> str:
    """The figures as a table for people."""
    m, b, c, s, f = (figures[k] for k in ("machine", "batch", "copy", "single", "healthz_floor"))
    aims = figures["aims"]
    verdict = {True: "met", False: "NOT met", None: f"not judged (the aim is for {AIM_CLIENTS} clients)"}
    server = figures["server"]
    rows = [
        ("batch ingest (POST /batch)", f"{b['reports_per_s']:,.0f} reports/s",
         f"{b['reports']:,} in {b['seconds']:.1f} s; {b['batches']} × {figures['options']['batch_size']:,}, "
         f"{b['clients']} client(s); per batch p50 {b['batch_p50_ms']:.0f} ms"),
        ("COPY reference", f"{c['reports_per_s']:,.0f} reports/s",
         f"{c['reports']:,} in {c['seconds']:.2f} s (median of "
         + ", ".join(f"{r:.2f}" for r in c["runs_seconds"]) + " s); rows "
         + ", ".join(f"{t} {n:,}" for t, n in c["rows"].items())),
        ("ratio batch / COPY", f"{figures['ratio_batch_to_copy']:.3f}",
         f"aim ≥ {aims['ratio_at_least']:.3f} (1/3): {verdict[aims['ratio_met']]}"),
        ("single POST p50", f"{s['p50_ms']:.1f} ms", f"{s['requests']:,} requests, {s['clients']} clients, "
                                                     f"{s['requests_per_s']:,.0f} req/s"),
        ("single POST p99", f"{s['p99_ms']:.1f} ms",
         f"aim < {aims['single_p99_ms_below']:.0f} ms: {verdict[aims['single_p99_met']]}; "
         f"p90 {s['p90_ms']:.1f}, max {s['max_ms']:.1f}"),
        ("GET /healthz p50 / p99", f"{f['p50_ms']:.1f} / {f['p99_ms']:.1f} ms",
         f"same client and concurrency: the floor of HTTP + client ({f['requests_per_s']:,.0f} req/s)"),
    ]
    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    lines = [f"{name:<{width}}  {value:>{value_width}}  {note}" for name, value, note in rows]
    cpu, per_item = figures["cpu_seconds"], figures["cpu_ms_per_item"]
    lines += [
        "",
        "CPU seconds in each phase (wall; client / server / postgres / other programs), and CPU ms per item:",
        *(f"  {phase:<7} {v['wall']:6.1f} s; {v['client']:.1f} / {v['server']:.1f} / {v['postgres']:.1f} / "
          f"{v.get('other', float('nan')):.1f}" + (
              f"; per {'request' if phase == 'single' else 'report'}: " + " / ".join(
                  f"{ms:.2f}" for ms in per_item[phase].values()) if phase in per_item else "")
          for phase, v in cpu.items()),
        *(f"  warning: other programs used {v['other']:.1f} CPU s during '{phase}': the machine was not quiet"
          for phase, v in cpu.items() if v.get("other", 0) > 0.1 * v["wall"] * (m["nproc"] or 1)),
        f"server: {server['workers']} uvicorn worker(s), scoring {'on' if server['scoring'] else 'off'}, "
        f"request log and metrics {'on' if server.get('observability', True) else 'off'}",
        f"machine: nproc {m['nproc']}, {m['cpu']}, {m['memory_gib']} GiB, {m['os']}; "
        f"busy CPUs before start {m['busy_cpus_before_start']}",
        f"Python {m['python']}, PostgreSQL {m['postgresql']} "
        + ", ".join(f"{k}={v}" for k, v in m["postgresql_settings"].items()),
        "packages: " + ", ".join(f"{k} {v}" for k, v in m["packages"].items()),
    ]
    return "\n".join(lines)


def compare_pair(off: dict[str, Any], on: dict[str, Any], aim: float) -> dict[str, Any]:
    """A server feature on against off (scoring, or the request log and metrics), from two runs of the same
    workload: throughput ratios and CPU per item. Each way in (single and batch) has its own verdict."""
    batch = on["batch"]["reports_per_s"] / off["batch"]["reports_per_s"]
    single = on["single"]["requests_per_s"] / off["single"]["requests_per_s"]
    return {
        "batch_throughput_on_over_off": batch,
        "batch_slowdown": 1 - batch,
        "single_throughput_on_over_off": single,
        "single_slowdown": 1 - single,
        "server_cpu_ms_per_report": {"off": off["cpu_ms_per_item"]["batch"]["server"],
                                     "on": on["cpu_ms_per_item"]["batch"]["server"]},
        "postgresql_cpu_ms_per_report": {"off": off["cpu_ms_per_item"]["batch"]["postgres"],
                                         "on": on["cpu_ms_per_item"]["batch"]["postgres"]},
        "server_cpu_ms_per_request": {"off": off["cpu_ms_per_item"]["single"]["server"],
                                      "on": on["cpu_ms_per_item"]["single"]["server"]},
        "aim_slowdown_at_most": aim,
        "aim_met_batch": _aim_met(batch, aim),
        "aim_met_single": _aim_met(single, aim),
    }


def _aim_met(on_over_off: float, aim: float) -> bool:
    return 1 - on_over_off <= aim


def _verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def render_pair(comparison: dict[str, Any], feature: str) -> str:
    """An on/off comparison as lines for people."""
    c = comparison
    aim = f"aim ≤ {100 * c['aim_slowdown_at_most']:.0f} %"
    return "\n".join([
        f"{feature} on / off (two runs, same workload):",
        f"  batch throughput {c['batch_throughput_on_over_off']:.3f} (slower by {100 * c['batch_slowdown']:.0f} %; "
        f"{aim}: {_verdict(c['aim_met_batch'])})",
        f"  single POST throughput {c['single_throughput_on_over_off']:.3f} (slower by "
        f"{100 * c['single_slowdown']:.0f} %; {aim}: {_verdict(c['aim_met_single'])})",
        f"  server / PostgreSQL CPU ms per batch report {c['server_cpu_ms_per_report']['off']:.2f} / "
        f"{c['postgresql_cpu_ms_per_report']['off']:.2f} → {c['server_cpu_ms_per_report']['on']:.2f} / "
        f"{c['postgresql_cpu_ms_per_report']['on']:.2f}; server CPU ms per single request "
        f"{c['server_cpu_ms_per_request']['off']:.2f} → {c['server_cpu_ms_per_request']['on']:.2f}",
    ])


def median_pairs(comparisons: Sequence[dict[str, Any]], aim: float) -> dict[str, Any]:
    """The median ratios of several alternating on/off pairs, their ranges, and the verdicts they give."""
    summary: dict[str, Any] = {"rounds": len(comparisons), "aim_slowdown_at_most": aim}
    for kind in ("batch", "single"):
        ratios = [c[f"{kind}_throughput_on_over_off"] for c in comparisons]
        median = statistics.median(ratios)
        summary |= {f"{kind}_throughput_on_over_off": median, f"{kind}_throughput_range": [min(ratios), max(ratios)],
                    f"aim_met_{kind}": _aim_met(median, aim)}
    return summary


def render_median(summary: dict[str, Any], feature: str) -> str:
    """The median of the rounds as lines for people."""
    c = summary

    def line(kind: str) -> str:
        ratio, (low, high) = c[f"{kind}_throughput_on_over_off"], c[f"{kind}_throughput_range"]
        return (f"  {kind} throughput on / off, median {ratio:.3f} (range {low:.3f}–{high:.3f}; slower by "
                f"{100 * (1 - ratio):.0f} %; aim ≤ {100 * c['aim_slowdown_at_most']:.0f} %: "
                f"{_verdict(c[f'aim_met_{kind}'])})")

    return "\n".join([f"{feature} on / off over {c['rounds']} alternating rounds:", line("batch"), line("single")])


def parse_args(argv: Sequence[str] | None = None) -> tuple[URL, list[ServerOptions], BenchOptions, Path | None]:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--reports", type=int, default=BenchOptions.reports, help="reports for batch ingest")
    parser.add_argument("--batch-size", type=int, default=BenchOptions.batch_size)
    parser.add_argument("--batch-clients", type=int, default=BenchOptions.batch_clients,
                        help="concurrent batch senders (default sequential)")
    parser.add_argument("--singles", type=int, default=BenchOptions.singles, help="single POST requests")
    parser.add_argument("--clients", type=int, default=BenchOptions.clients, help="concurrent single-POST clients")
    parser.add_argument("--warmup", type=int, default=BenchOptions.warmup, help="warm-up reports (not measured)")
    parser.add_argument("--seed", type=int, default=BenchOptions.seed)
    parser.add_argument("--copy-repeats", type=int, default=BenchOptions.copy_repeats,
                        help="COPY reference runs (the median counts)")
    parser.add_argument("--workers", type=int, default=ServerOptions.workers, help="uvicorn workers")
    parser.add_argument("--scoring", choices=("off", "on", "both"), default="off",
                        help="AVVIK_SCORING_ENABLED of the server (default off: ingest alone); both: one run "
                             "each, then their ratio")
    parser.add_argument("--observability", choices=("off", "on", "both"), default="on",
                        help="AVVIK_REQUEST_LOG and AVVIK_METRICS_ENABLED of the server (default on, as deployed); "
                             "both: one run without and one with, and their ratio (not with --scoring both)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="with --scoring both: alternate off and on this many times and judge the median ratios "
                             "(one pair is at the mercy of a busy moment)")
    parser.add_argument("--model-dir", default=None, help="with --scoring on or both: a model directory to reuse")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="a loopback PostgreSQL server and a database to connect to for CREATE DATABASE")
    parser.add_argument("--start-timeout", type=float, default=BenchOptions.start_timeout,
                        help="seconds to wait for /readyz")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the figures here")
    args = parser.parse_args(argv)
    for name in ("reports", "batch_size", "batch_clients", "singles", "clients", "workers", "copy_repeats", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.batch_size > 1_000:
        parser.error("--batch-size: the server takes at most 1,000 reports per batch")
    if args.scoring == "both" and args.observability == "both":
        parser.error("--scoring both and --observability both: compare one feature at a time")
    if args.rounds > 1 and "both" not in (args.scoring, args.observability):
        parser.error("--rounds: only with --scoring both or --observability both")
    pairs = {"off": [False], "on": [True], "both": [False, True] * args.rounds}
    servers = [ServerOptions(workers=args.workers, scoring=scoring, model_dir=args.model_dir, observability=seen)
               for scoring in pairs[args.scoring] for seen in pairs[args.observability]]
    bench = BenchOptions(reports=args.reports, batch_size=args.batch_size, batch_clients=args.batch_clients,
                         singles=args.singles, clients=args.clients, warmup=max(args.warmup, 1), seed=args.seed,
                         start_timeout=args.start_timeout, copy_repeats=args.copy_repeats)
    return loopback_url(args.pg_url), servers, bench, args.json


def compared_feature(servers: Sequence[ServerOptions]) -> tuple[str, str, float]:
    """Which server option a run of several servers compares: its name in figures, for people, and its aim."""
    if len({s.observability for s in servers}) > 1:
        return "observability", "request log and metrics", AIM_OBSERVABILITY_SLOWDOWN
    return "scoring", "scoring", AIM_SCORING_SLOWDOWN


def _terminate(signum: int, _frame: object) -> None:
    # SIGTERM unwinds like Ctrl-C, so the server is stopped and the database dropped.
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 0 when it ran (aims met or not), 1 when it could not, 130 on interrupt."""
    try:
        admin, servers, bench, json_path = parse_args(argv)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    # Ctrl-C must work even when started from a shell that ignores SIGINT in background jobs.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        runs = [run(admin, server, bench) for server in servers]
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; server stopped and database dropped", file=sys.stderr)
        return 130
    for figures in runs:
        print()
        print(render(figures))
    if len(runs) >= 2:
        key, feature, aim = compared_feature(servers)
        rounds = [{f"{key}_off": off, f"{key}_on": on, key: compare_pair(off, on, aim)}
                  for off, on in zip(runs[::2], runs[1::2], strict=True)]
        for number, pair in enumerate(rounds, 1):
            print()
            if len(rounds) > 1:
                print(f"round {number} of {len(rounds)}:")
            print(render_pair(pair[key], feature))
        if len(rounds) == 1:
            figures = {"runs": {f"{key}_off": runs[0], f"{key}_on": runs[1]}, key: rounds[0][key]}
        else:
            summary = median_pairs([pair[key] for pair in rounds], aim)
            print()
            print(render_median(summary, feature))
            figures = {"rounds": rounds, key: summary}
    else:
        figures = runs[0]
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(figures, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"\nfigures written to {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
