"""Statistics benchmark: latency of every stats endpoint on 1,000,000 reports, beside hand-written SQL.

What one run does (loopback only, bounded):

1. makes sure the bench database exists (`bench/gen_reports.py`, reused when complete; a new migration is
   applied to it);
2. creates a dashboard key and an adviser key (revoked at the end) and builds the real app in process on
   that database (Starlette's TestClient: routing, authentication, validation, the service, SQLAlchemy and
   the JSON answer, without a socket);
3. for each endpoint, with the typical dashboard query (one year, by month and target group) and after a
   warm-up, alternates a request through the app with the same aggregate written by hand as one SQL
   statement and run directly with psycopg (the limit: what PostgreSQL itself needs), `--repeat` times;
4. prints p50 and p95 of both and their ratio, beside the aims (p95 < 150 ms, within 2× of the SQL).

    .venv/bin/python bench/stats.py                     # 1,000,000 reports, 40 requests per line
    .venv/bin/python bench/stats.py --repeat 100 --json bench/out/stats.json

The references compute what each endpoint's SQL computes; where the endpoint does more in Python, the
reference is the data it needs: the matrix's reference counts unordered service pairs in SQL (the app also
works out which side reported, in the same statement), the references of `recurring` and `similar` read the
candidate reports (the app then compares their texts).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import URL

ROOT = Path(__file__).resolve().parents[1]
# The project first: bench/ (this script's folder, already on the path) has a classifier.py of its own.
sys.path.insert(0, str(ROOT))

from bench import gen_reports, table  # noqa: E402
from bench.table import percentile  # noqa: E402

AIM_P95_MS = 150.0
AIM_RATIO = 2.0


@dataclass(frozen=True)
class Case:
    """One endpoint with its typical query, the role that calls it, and the hand-written reference SQL."""

    name: str
    role: str  # dashboard or adviser
    path: str
    params: dict[str, Any]
    reference: str
    reference_params: dict[str, Any]
    uncached: bool = False  # forget the kept text vectors and clusters before every request


def year_bounds(year: int) -> dict[str, Any]:
    """The query parameters of one Oslo calendar year, and the SQL parameters of the same year."""
    return {"reported_from": date(year, 1, 1).isoformat(), "reported_to": date(year, 12, 31).isoformat()}


# Every reference filters on the Oslo reporting date (`reported_on`), as the app's statistics do, reads the
# same indexes (the counts reference the labels' copy of the date, migration 0007) and groups by day, the
# fastest grouping on PostgreSQL; folding days into months is left to the client, as the app does.
# The counts answer has the cells and the number of distinct reports under the filter (the total row).
COUNTS_SQL = """
SELECT l.reported_on, l.code, count(*)
FROM report_label l
WHERE l.dimension = 'target_group' AND l.provenance IN ('adviser', 'reporter')
  AND l.reported_on BETWEEN %(first)s AND %(last)s
GROUP BY 1, 2
UNION ALL
SELECT NULL, NULL, count(*) FROM report WHERE reported_on BETWEEN %(first)s AND %(last)s
"""
# Until 2026-12-06 the reference had the cells only; kept to compare with the earlier figures (--only cells).
COUNTS_CELLS_SQL = COUNTS_SQL.split("UNION ALL")[0]
TREND_SQL = """
SELECT 'count', reported_on, count(*) FROM report
WHERE confirmed_category_code = 'samhandling_barn_unge' AND reported_on BETWEEN %(year_before)s AND %(last)s
GROUP BY 2
UNION ALL
SELECT 'all_reports', reported_on, count(*) FROM report WHERE reported_on BETWEEN %(year_before)s AND %(last)s
GROUP BY 2
"""
MATRIX_SQL = """
SELECT a.code, b.code, count(*)
FROM report r
JOIN report_label a ON a.report_id = r.id AND a.dimension = 'service' AND a.provenance IN ('adviser', 'reporter')
     AND a.reported_on BETWEEN %(first)s AND %(last)s
JOIN report_label b ON b.report_id = r.id AND b.dimension = 'service' AND b.provenance IN ('adviser', 'reporter')
     AND b.reported_on BETWEEN %(first)s AND %(last)s AND a.code < b.code
WHERE r.confirmed_category_code = 'samhandling_barn_unge' AND r.reported_on BETWEEN %(first)s AND %(last)s
GROUP BY 1, 2
"""
ESTIMATE_SQL = """
SELECT
  count(*) FILTER (WHERE b.confirmed_category_code = 'samhandling_barn_unge'),
  count(*) FILTER (WHERE b.flagged IS NULL AND undecided),
  count(*) FILTER (WHERE b.flagged AND b.score >= %(middle)s AND undecided),
  count(*) FILTER (WHERE b.flagged AND b.score < %(middle)s AND undecided),
  count(*) FILTER (WHERE NOT b.flagged AND undecided),
  (SELECT count(*) FROM estimate_basis v WHERE v.reviewed AND v.review_model_version = %(version)s)
FROM estimate_basis b
CROSS JOIN LATERAL (SELECT coalesce(b.confirmed_category_code, '') <> 'samhandling_barn_unge'
                           AND NOT b.reviewed) AS u(undecided)
WHERE b.reported_on BETWEEN %(first)s AND %(last)s
"""
CANDIDATES_SQL = """
SELECT r.id, r.title, r.description, r.unit_name,
       array(SELECT l.code FROM report_label l WHERE l.report_id = r.id AND l.dimension = 'service'
             AND l.provenance IN ('adviser', 'reporter'))
FROM report r
WHERE r.confirmed_category_code = ANY(%(categories)s) AND r.reported_on BETWEEN %(first)s AND %(last)s
ORDER BY r.reported_at DESC, r.id DESC LIMIT 2000
"""


def cases(year: int, similar_to: int, middle: float, version: str | None) -> list[Case]:
    """The typical dashboard queries of one year, and their references."""
    params = year_bounds(year)
    sql_params = {"first": date(year, 1, 1), "last": date(year, 12, 31), "year_before": date(year - 1, 1, 1),
                  "middle": middle, "version": version, "categories": ["samhandling_barn_unge"]}
    counts = {"by": ["period", "target_group"], "period": "month", **params}
    trend = {"period": "month", "category": "samhandling_barn_unge", **params}
    result = []
    for role in ("dashboard", "adviser"):
        result += [
            Case("counts by month × target group", role, "/api/v1/stats/counts", counts, COUNTS_SQL, sql_params),
            Case("counts by month × target group, CSV", role, "/api/v1/stats/counts", {**counts, "format": "csv"},
                 COUNTS_SQL, sql_params),
            Case("counts, cells-only reference", role, "/api/v1/stats/counts", counts, COUNTS_CELLS_SQL,
                 sql_params),
            Case("trend by month", role, "/api/v1/stats/trend", trend, TREND_SQL, sql_params),
            Case("collaboration matrix", role, "/api/v1/stats/collaboration-matrix", params, MATRIX_SQL,
                 sql_params),
            Case("estimate", role, "/api/v1/stats/estimate", params, ESTIMATE_SQL, sql_params),
        ]
    # Text similarity keeps what it computed for the same candidates (a repeated dashboard query); the
    # uncached lines measure a first query, or one after a report under the filter was added or changed.
    result += [
        Case("recurring failures", "adviser", "/api/v1/stats/recurring", params, CANDIDATES_SQL, sql_params),
        Case("similar reports", "adviser", f"/api/v1/reports/{similar_to}/similar", params, CANDIDATES_SQL,
             sql_params),
        Case("recurring failures, uncached", "adviser", "/api/v1/stats/recurring", params, CANDIDATES_SQL,
             sql_params, uncached=True),
        Case("similar reports, uncached", "adviser", f"/api/v1/reports/{similar_to}/similar", params,
             CANDIDATES_SQL, sql_params, uncached=True),
    ]
    return result


@dataclass
class Line:
    """Measured latencies of one case."""

    name: str
    role: str
    requests: int
    app_p50_ms: float
    app_p95_ms: float
    sql_p50_ms: float
    sql_p95_ms: float
    ratio_p50: float
    ratio_p95: float
    meets_p95: bool
    meets_ratio: bool


def timed(call: Callable[[], Any]) -> float:
    """Milliseconds one call takes."""
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def measure(case: Case, get: Callable[[str, dict[str, Any]], Any], conn: psycopg.Connection[Any], repeat: int,
            warmup: int) -> Line:
    """Alternate app and reference so that both see the same machine."""
    from app.stats import similarity

    def app() -> None:
        if case.uncached:
            similarity.clear_caches()
        answer = get(case.path, case.params)
        if answer.status_code != 200:
            raise SystemExit(f"{case.name} ({case.role}): {answer.status_code} {answer.text[:500]}")
        answer.content  # noqa: B018 - the body is part of the answer's cost

    def reference() -> None:
        conn.execute(case.reference, case.reference_params).fetchall()

    for _ in range(warmup):
        app()
        reference()
    app_ms, sql_ms = [], []
    for _ in range(repeat):
        app_ms.append(timed(app))
        sql_ms.append(timed(reference))
    a50, a95, s50, s95 = (percentile(app_ms, 50), percentile(app_ms, 95), percentile(sql_ms, 50),
                          percentile(sql_ms, 95))
    return Line(case.name, case.role, repeat, round(a50, 1), round(a95, 1), round(s50, 1), round(s95, 1),
                round(a50 / s50, 2), round(a95 / s95, 2), a95 < AIM_P95_MS, a95 / s95 <= AIM_RATIO)


def create_keys(url: URL) -> tuple[dict[str, str], list[str]]:
    """A dashboard and an adviser key in the bench database (every department)."""
    from app.auth.keys import create_key
    from app.auth.principal import Role
    from app.db import make_engine, make_sessionmaker

    suffix = secrets.token_hex(4)
    names = {"dashboard": f"bench-stats-dashboard-{suffix}", "adviser": f"bench-stats-adviser-{suffix}"}
    engine = make_engine(url.render_as_string(hide_password=False))
    try:
        with make_sessionmaker(engine).begin() as session:
            keys = {role: create_key(session, name, Role(role), None)[1] for role, name in names.items()}
    finally:
        engine.dispose()
    return keys, list(names.values())


def revoke_keys(url: URL, names: list[str]) -> None:
    """Revoke the keys this run made."""
    from app.auth.keys import revoke_key
    from app.db import make_engine, make_sessionmaker

    engine = make_engine(url.render_as_string(hide_password=False))
    try:
        with make_sessionmaker(engine).begin() as session:
            for name in names:
                revoke_key(session, name)
    finally:
        engine.dispose()


def facts(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """Machine and database facts printed with the figures."""
    row = conn.execute("SELECT version(), current_setting('shared_buffers'), current_setting('work_mem'), "
                       "current_setting('jit'), current_setting('max_parallel_workers_per_gather'), "
                       "(SELECT count(*) FROM report), pg_size_pretty(pg_database_size(current_database()))"
                       ).fetchone()
    assert row is not None
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "postgresql": str(row[0]).split(",")[0],
            "shared_buffers": row[1], "work_mem": row[2], "jit": row[3], "parallel_workers_per_gather": row[4],
            "reports": row[5], "database_size": row[6], "load_average_before": os.getloadavg()}


def pick_report(conn: psycopg.Connection[Any], year: int) -> int:
    """A collaboration deviation about children from the middle of the year, to find similar reports for."""
    row = conn.execute("SELECT id FROM report WHERE confirmed_category_code = 'samhandling_barn_unge' "
                       "AND reported_on >= %s ORDER BY reported_on, id LIMIT 1", (date(year, 6, 1),)).fetchone()
    if row is None:
        raise SystemExit(f"no collaboration deviation about children reported in {year}")
    return int(row[0])


def estimate_inputs(conn: psycopg.Connection[Any]) -> tuple[float, str | None]:
    """The active model's version and the middle of its flag band, as the estimate computes them."""
    row = conn.execute("SELECT a.version, m.threshold FROM active_model a JOIN model_version m "
                       "ON m.version = a.version WHERE a.id = 1").fetchone()
    threshold = float(row[1]) if row else 0.5
    return (threshold + 1) / 2, (str(row[0]) if row else None)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Measure every case; returns the figures."""
    from fastapi.testclient import TestClient

    from app.main import create_app
    from app.settings import Settings

    admin = gen_reports.admin_url(args.pg_url)
    url = gen_reports.ensure(admin, args.database, gen_reports.Options(args.reports, args.seed), reuse=True)
    dsn = gen_reports.libpq(url)
    keys, names = create_keys(url)
    lines: list[Line] = []
    try:
        settings = Settings(_env_file=None, database_url=url.render_as_string(hide_password=False),
                            scoring_enabled=False, rate_limit_per_minute=10**9)
        with psycopg.connect(dsn, autocommit=True) as conn, TestClient(create_app(settings)) as client:
            machine = facts(conn)
            middle, version = estimate_inputs(conn)
            chosen = cases(args.year, pick_report(conn, args.year), middle, version)
            for case in chosen:
                if args.only and not any(word in case.name for word in args.only):
                    continue
                headers = {"Authorization": f"Bearer {keys[case.role]}"}

                def get(path: str, params: dict[str, Any], headers: dict[str, str] = headers) -> Any:
                    return client.get(path, params=params, headers=headers)

                line = measure(case, get, conn, args.repeat, args.warmup)
                lines.append(line)
                print(render_line(line), flush=True)
            machine["load_average_after"] = os.getloadavg()
    finally:
        revoke_keys(url, names)
    return {"date": date.today().isoformat(), "year": args.year, "repeat": args.repeat, "machine": machine,
            "lines": [asdict(line) for line in lines]}


COLUMNS = [table.Column("endpoint", 40), table.Column("role", 9), table.Column("app p50", 8, ".1f"),
           table.Column("app p95", 8, ".1f"), table.Column("SQL p50", 8, ".1f"), table.Column("SQL p95", 8, ".1f"),
           table.Column("ratio p50", 9, ".2f"), table.Column("ratio p95", 9, ".2f")]
HEADER = table.header(COLUMNS, f"aims (p95 < {AIM_P95_MS:.0f} ms, ≤ {AIM_RATIO:.0f}×)")


def render_line(line: Line) -> str:
    """One printed line of the table."""
    return table.line(COLUMNS, [line.name, line.role, line.app_p50_ms, line.app_p95_ms, line.sql_p50_ms,
                                line.sql_p95_ms, line.ratio_p50, line.ratio_p95], [line.meets_p95, line.meets_ratio])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    gen_reports.add_arguments(parser)
    parser.add_argument("--year", type=int, default=2025, help="the year of the typical dashboard query")
    table.add_run_options(parser, "endpoint")
    args = parser.parse_args(argv)
    table.check_run_options(parser, args)
    print(HEADER, flush=True)
    figures = run(args)
    print(json.dumps(figures["machine"], ensure_ascii=False))
    table.write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
