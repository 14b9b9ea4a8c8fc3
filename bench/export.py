"""Export benchmark: the server's memory while a client downloads every report as CSV, and its speed.

What one run does (loopback only, bounded):

1. makes sure the bench database exists (`bench/gen_reports.py`, reused when complete);
2. creates an adviser key (revoked at the end) and starts `avvik serve` on a free port as a subprocess on
   that database, waits for /readyz and warms it up with a small export;
3. records the server's resident memory (VmRSS of /proc/<pid>/status) at rest, then downloads
   `GET /api/v1/reports?format=csv` (every report; `--description` adds the free text) while sampling
   VmRSS every 20 ms; at the end reads VmHWM, the kernel's own peak;
4. checks the download (BOM, one line per report) and, as the reference, has PostgreSQL write the same
   reports' columns as CSV itself (`COPY (SELECT …) TO STDOUT`, read with psycopg), the limit of how fast
   the rows can leave the database;
5. prints peak memory (aim < 200 MB) beside the memory at rest, and rows/s beside COPY's, as ratios.

    .venv/bin/python bench/export.py                    # 1,000,000 reports
    .venv/bin/python bench/export.py --description --json bench/out/export.json
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
# The project first: bench/ (this script's folder, already on the path) has a classifier.py of its own.
sys.path.insert(0, str(ROOT))

from bench import gen_reports  # noqa: E402

AIM_PEAK_MB = 200.0
COPY_SQL = """
COPY (SELECT r.id, r.source_system, r.external_id, r.reported_at, r.occurred_at, r.title, r.reported_category,
             r.confirmed_category_code, r.confirmed_category_provenance, r.suggested_category_code,
             r.suggested_category_provenance, coalesce(s.flagged, false), s.score, r.department_code, r.agency_code,
             r.unit_name, r.status,
             (SELECT string_agg(l.code, ',' ORDER BY l.code) FROM report_label l WHERE l.report_id = r.id
                AND l.dimension = 'target_group' AND l.provenance <> 'classifier'),
             (SELECT string_agg(l.code, ',' ORDER BY l.code) FROM report_label l WHERE l.report_id = r.id
                AND l.dimension = 'service' AND l.provenance <> 'classifier'),
             (SELECT string_agg(l.code, ',' ORDER BY l.code) FROM report_label l WHERE l.report_id = r.id
                AND l.dimension = 'target_group' AND l.provenance = 'classifier'),
             (SELECT string_agg(l.code, ',' ORDER BY l.code) FROM report_label l WHERE l.report_id = r.id
                AND l.dimension = 'service' AND l.provenance = 'classifier'){description}
      FROM report r LEFT JOIN report_score s ON s.report_id = r.id
      ORDER BY r.reported_at, r.id)
TO STDOUT WITH (FORMAT csv, DELIMITER ';', HEADER)
"""


class BenchError(RuntimeError):
    """The benchmark could not run or the server answered something unexpected."""


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in kB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0])
    return values


class Sampler(threading.Thread):
    """Samples a process's resident memory until stopped."""

    def __init__(self, pid: int, every: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.peak_kb = 0
        self.samples = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.peak_kb = max(self.peak_kb, memory_kb(self.pid)["VmRSS"])
            self.samples += 1
            self.done.wait(self.every)

    def stop(self) -> None:
        self.done.set()
        self.join()


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(database_url: str, workdir: Path, timeout: float = 120.0) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`avvik serve` (one process: uvicorn with one worker runs in it) until the block ends."""
    port = free_port()
    env = {**os.environ, "AVVIK_DATABASE_URL": database_url, "AVVIK_SCORING_ENABLED": "false",
           "AVVIK_RATE_LIMIT_PER_MINUTE": "1000000", "AVVIK_LOG_LEVEL": "WARNING"}
    avvik = Path(sys.executable).parent / "avvik"
    log = (workdir / "server.log").open("wb")
    process = subprocess.Popen([str(avvik), "serve", "--host", "127.0.0.1", "--port", str(port)], env=env,
                               cwd=workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise BenchError(f"server exited: {(workdir / 'server.log').read_text(errors='replace')[-2000:]}")
            try:
                if httpx.get(f"{base}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise BenchError("server not ready")
            time.sleep(0.2)
        yield process, base
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)  # the group this run started: the server only
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        log.close()


@dataclass
class Download:
    """One streamed export as the client saw it."""

    rows: int
    megabytes: float
    seconds: float
    rows_per_s: float
    first_byte_s: float


def download(base: str, key: str, params: dict[str, Any]) -> Download:
    """Stream the export, counting lines; checks the BOM."""
    started = time.perf_counter()
    first = None
    lines = size = 0
    with httpx.stream("GET", f"{base}/api/v1/reports", params=params, headers={"Authorization": f"Bearer {key}"},
                      timeout=httpx.Timeout(60.0, read=600.0)) as answer:
        if answer.status_code != 200:
            raise BenchError(f"export answered {answer.status_code}: {answer.read()[:500]!r}")
        for block in answer.iter_bytes(65536):
            if first is None:
                first = time.perf_counter() - started
                if not block.startswith("\ufeff".encode()):
                    raise BenchError("the export does not start with a byte-order mark")
            lines += block.count(b"\n")
            size += len(block)
    seconds = time.perf_counter() - started
    return Download(lines - 1, round(size / 1e6, 1), round(seconds, 1), round((lines - 1) / seconds),
                    round(first or 0.0, 3))


def copy_reference(dsn: str, description: bool) -> Download:
    """PostgreSQL writing the same reports as CSV itself."""
    statement = COPY_SQL.replace("{description}", ", r.description" if description else "")
    started = time.perf_counter()
    lines = size = 0
    with psycopg.connect(dsn) as conn, conn.cursor() as cursor, cursor.copy(statement) as copy:
        for block in copy:
            lines += bytes(block).count(b"\n")
            size += len(block)
    seconds = time.perf_counter() - started
    return Download(lines - 1, round(size / 1e6, 1), round(seconds, 1), round((lines - 1) / seconds), 0.0)


def adviser_key(url: str) -> tuple[str, str]:
    """An adviser key for every department in the bench database."""
    from app.auth.keys import create_key
    from app.auth.principal import Role
    from app.db import make_engine, make_sessionmaker

    name = f"bench-export-{secrets.token_hex(4)}"
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine).begin() as session:
            return name, create_key(session, name, Role.ADVISER, None)[1]
    finally:
        engine.dispose()


def revoke(url: str, name: str) -> None:
    """Revoke the key this run made."""
    from app.auth.keys import revoke_key
    from app.db import make_engine, make_sessionmaker

    engine = make_engine(url)
    try:
        with make_sessionmaker(engine).begin() as session:
            revoke_key(session, name)
    finally:
        engine.dispose()


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start the server, measure one export and the COPY reference."""
    admin = gen_reports.admin_url(args.pg_url)
    url_object = gen_reports.ensure(admin, args.database, gen_reports.Options(args.reports, args.seed), reuse=True)
    url = url_object.render_as_string(hide_password=False)
    dsn = gen_reports.libpq(url_object)
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM report").fetchone()
        reports = int(row[0]) if row else 0
    params: dict[str, Any] = {"format": "csv", **({"include_description": "true"} if args.description else {})}
    name, key = adviser_key(url)
    try:
        with tempfile.TemporaryDirectory(prefix="avvik-bench-export-") as workdir, \
                server(url, Path(workdir)) as (process, base):
            ready = memory_kb(process.pid)
            download(base, key, {**params, "reported_from": "2026-11-01"})  # warm-up: imports, pools, caches
            at_rest = memory_kb(process.pid)
            sampler = Sampler(process.pid)
            sampler.start()
            try:
                measured = download(base, key, params)
            finally:
                sampler.stop()
            after = memory_kb(process.pid)
        if measured.rows != reports:
            raise BenchError(f"exported {measured.rows:,} rows, the database holds {reports:,} reports")
        reference = copy_reference(dsn, args.description)
    finally:
        revoke(url, name)
    peak_mb = max(sampler.peak_kb, after["VmHWM"]) / 1024
    return {
        "date": date.today().isoformat(), "reports": reports, "description": args.description,
        "rss_ready_mb": round(ready["VmRSS"] / 1024, 1), "rss_at_rest_mb": round(at_rest["VmRSS"] / 1024, 1),
        "peak_rss_mb": round(peak_mb, 1),
        "peak_sampled_rss_mb": round(sampler.peak_kb / 1024, 1), "hwm_mb": round(after["VmHWM"] / 1024, 1),
        "rss_after_mb": round(after["VmRSS"] / 1024, 1), "samples": sampler.samples,
        "peak_over_rest": round(peak_mb * 1024 / at_rest["VmRSS"], 2), "meets_aim": peak_mb < AIM_PEAK_MB,
        "export": asdict(measured), "copy": asdict(reference),
        "speed_ratio": round(measured.rows_per_s / reference.rows_per_s, 3),
        "load_average": os.getloadavg(),
    }


def render(f: dict[str, Any]) -> str:
    """The printed summary."""
    e, c = f["export"], f["copy"]
    return "\n".join([
        f"export of {f['reports']:,} reports as CSV{' with descriptions' if f['description'] else ''}",
        f"  server memory: peak {f['peak_rss_mb']:.1f} MB (VmHWM {f['hwm_mb']:.1f}, sampled VmRSS max "
        f"{f['peak_sampled_rss_mb']:.1f}, {f['samples']} samples); when ready {f['rss_ready_mb']:.1f} MB, at rest "
        f"after a warm-up export {f['rss_at_rest_mb']:.1f} MB, after {f['rss_after_mb']:.1f} MB; "
        f"peak / rest {f['peak_over_rest']:.2f}, growth {f['peak_rss_mb'] - f['rss_at_rest_mb']:.1f} MB; "
        f"aim < {AIM_PEAK_MB:.0f} MB: {'met' if f['meets_aim'] else 'MISSED'}",
        f"  download: {e['rows']:,} rows, {e['megabytes']:,} MB in {e['seconds']} s = {e['rows_per_s']:,} rows/s "
        f"(first byte after {e['first_byte_s']} s)",
        f"  PostgreSQL COPY of the same rows: {c['megabytes']:,} MB in {c['seconds']} s = {c['rows_per_s']:,} rows/s",
        f"  ratio export / COPY: {f['speed_ratio']:.3f}",
        f"  load average at the end: {', '.join(f'{x:.2f}' for x in f['load_average'])}",
    ])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    gen_reports.add_arguments(parser)
    parser.add_argument("--description", action="store_true", help="export the free-text description too")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    try:
        figures = run(args)
    except BenchError as exc:
        print(f"export bench: {exc}", file=sys.stderr)
        return 1
    print(render(figures))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
