"""Web pages benchmark: server time of each adviser page beside the JSON API call(s) serving the same data.

What one run does:

1. on PostgreSQL, makes sure the bench database exists (`bench/gen_reports.py`, 1,000,000 reports by default,
   reused when complete); or, with `--sqlite-demo N`, a new SQLite file with N reports delivered through the API
   (a quick check that the script works, not a figure to quote);
2. builds the real app in process (Starlette's TestClient: routing, sessions, authentication, the services,
   SQLAlchemy, the template or the JSON answer, without a socket), on one connection whose outer transaction
   is rolled back at the end: the admin key, the web session and the decisions it makes leave no trace;
3. signs in on the page with that key, then for each page alternates a request of the page with the API
   call(s) that serve the same data, `--repeat` times after a warm-up, and prints p50/p95 of both and their
   ratio beside the aims (page p95 ≤ 1.5× the API and under 300 ms);
4. times the review decision round trip from the queue (an htmx POST answered with the next report),
   aim p95 < 150 ms; and weighs the first load of a page (HTML + CSS + JS, uncompressed), aim < 200 KB.

    .venv/bin/python bench/web.py                         # 1,000,000 reports on loopback PostgreSQL
    .venv/bin/python bench/web.py --repeat 100 --json bench/out/web.json
    .venv/bin/python bench/web.py --sqlite-demo 300 --repeat 5     # check the script on a small data set

The queue page shows the first report of the queue with its history, so its API side is the queue call (the
100 reports the page reads) plus that report's detail and history calls; the statistics page's API side is the
five statistics calls it draws from (counts, trend, matrix, recurring, estimate), added up. Similar reports are
loaded by the page afterwards (a fragment of their own), so neither side counts them.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import table  # noqa: E402
from bench.table import percentile, verdict  # noqa: E402

AIM_P95_MS = 300.0
AIM_RATIO = 1.5
AIM_DECISION_P95_MS = 150.0
# The statistics parts as the page names them, in the order of `stats_calls` (counts, trend, matrix, ...).
STATS_PART_ORDER = ["antall", "trend", "samhandling", "gjentakende", "estimat"]
AIM_WEIGHT_BYTES = 200_000


@dataclass(frozen=True)
class Line:
    """One page beside its API calls."""

    page: str
    repeat: int
    page_p50_ms: float
    page_p95_ms: float
    api_p50_ms: float
    api_p95_ms: float
    ratio_p95: float
    meets_p95: bool
    meets_ratio: bool


def timed(call: Callable[[], Any]) -> float:
    """Milliseconds one call takes; a failed answer stops the run (a figure of an error page is no figure)."""
    start = time.perf_counter()
    answers = call()
    elapsed = (time.perf_counter() - start) * 1000
    for answer in answers if isinstance(answers, list) else [answers]:
        if answer.status_code >= 400:
            raise SystemExit(f"{answer.request.url.path}: {answer.status_code}")
    return elapsed


def measure(name: str, page: Callable[[], Any], api: Callable[[], Any], repeat: int, warmup: int) -> Line:
    """Alternate page and API, so that both meet the same machine load."""
    for _ in range(warmup):
        timed(page)
        timed(api)
    page_ms, api_ms = [], []
    for _ in range(repeat):
        page_ms.append(timed(page))
        api_ms.append(timed(api))
    p50, p95, a50, a95 = (percentile(page_ms, 50), percentile(page_ms, 95), percentile(api_ms, 50),
                          percentile(api_ms, 95))
    return Line(name, repeat, round(p50, 1), round(p95, 1), round(a50, 1), round(a95, 1), round(p95 / a95, 2),
                p95 < AIM_P95_MS, p95 / a95 <= AIM_RATIO)


def sqlite_demo(folder: str, reports: int) -> str:
    """A new SQLite database with the default model active and `reports` reports delivered through the API
    (scored, as in production)."""
    from fastapi.testclient import TestClient

    from app.main import create_app
    from app.settings import Settings
    from tests.web.conftest import deliver
    from tests.web.live import prepare

    url = f"sqlite:///{folder}/web-bench.db"
    engine, keys = prepare(url)
    engine.dispose()
    settings = Settings(_env_file=None, database_url=url, rate_limit_per_minute=10**9, gc_freeze=False)
    with TestClient(create_app(settings)) as client:
        deliver(client, {"Authorization": f"Bearer {keys['integration']}"}, reports, prefix="WEB", recent=True)
    return url


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Sign in, measure every page, the decision round trip and the page weight; returns the figures."""
    from fastapi.testclient import TestClient
    from sqlalchemy import select

    from app.auth.keys import create_key
    from app.auth.principal import Role
    from app.db import make_engine, make_sessionmaker
    from app.main import create_app
    from app.report.models import Report
    from app.settings import Settings

    folder = tempfile.mkdtemp(prefix="avvik-web-bench-")
    if args.sqlite_demo:
        url = sqlite_demo(folder, args.sqlite_demo)
    else:
        from bench import gen_reports

        admin = gen_reports.admin_url(args.pg_url)
        url = gen_reports.ensure(admin, args.database, gen_reports.Options(args.reports, args.seed),
                                 reuse=True).render_as_string(hide_password=False)
    engine = make_engine(url)
    settings = Settings(_env_file=None, database_url=url, scoring_enabled=False, rate_limit_per_minute=10**9,
                        web_cookie_secure=False, gc_freeze=False)
    app = create_app(settings)
    lines: list[Line] = []
    with engine.connect() as connection:
        outer = connection.begin()  # everything this run writes is rolled back at the end
        app.state.engine = engine
        app.state.sessionmaker = make_sessionmaker(connection, join_transaction_mode="create_savepoint")
        # Reads beside a request (the statistics page's calls) use connections of their own, as in production;
        # they read the generated reports, which this run does not change before they are measured.
        app.state.read_sessionmaker = make_sessionmaker(engine)
        with make_sessionmaker(connection, join_transaction_mode="create_savepoint").begin() as session:
            key = create_key(session, "bench-web-admin", Role.ADMIN, None)[1]
            year = session.scalar(select(Report.reported_on).order_by(Report.reported_on.desc()).limit(1))
        first, last = date(year.year, 1, 1).isoformat(), date(year.year, 12, 31).isoformat()
        api_headers = {"Authorization": f"Bearer {key}"}
        with TestClient(app) as client:
            form = client.get("/logg-inn").text
            token = re.search(r'name="signin_token" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
            client.post("/logg-inn", data={"api_key": key, "signin_token": token}, follow_redirects=False)
            queue = client.get("/api/v1/review-queue", params={"limit": 500}, headers=api_headers).json()
            if not queue["items"]:
                raise SystemExit("the review queue is empty: nothing to measure")
            report_id = queue["items"][0]["report"]["id"]
            period = {"reported_from": first, "reported_to": last}

            def api(*calls: tuple[str, dict[str, Any]]) -> Callable[[], list[Any]]:
                return lambda: [client.get(path, params=params, headers=api_headers) for path, params in calls]

            report_calls = [(f"/api/v1/reports/{report_id}", {}), (f"/api/v1/reports/{report_id}/history", {})]
            stats_calls = [("/api/v1/stats/counts", {**period, "by": ["period", "target_group"]}),
                           ("/api/v1/stats/trend", period), ("/api/v1/stats/collaboration-matrix", period),
                           ("/api/v1/stats/recurring", period), ("/api/v1/stats/estimate", period)]
            cases = [
                ("queue /vurdering", lambda: client.get("/vurdering"),
                 api(("/api/v1/review-queue", {"limit": 100}), *report_calls)),
                ("report /avvik/{id}", lambda: client.get(f"/avvik/{report_id}"), api(*report_calls)),
                ("list /avvik", lambda: client.get("/avvik"), api(("/api/v1/reports", {"limit": 50}))),
                # The page comes with its filter (the taxonomy's choices); each part follows as its own request.
                ("statistics /statistikk", lambda: client.get("/statistikk", params=period),
                 api(("/api/v1/taxonomy", {}))),
                *[(f"statistics part {part}", partial(client.get, f"/statistikk/del/{part}", params=period,
                                                      headers={"HX-Request": "true"}), api(call))
                  for part, call in zip(STATS_PART_ORDER, stats_calls, strict=True)],
                # Without JavaScript the page holds every part, computed side by side: beside all five calls.
                ("statistics ?alle=1 (no JS)", lambda: client.get("/statistikk", params={**period, "alle": "1"}),
                 api(*stats_calls)),
            ]
            for name, page, api_side in cases:
                if args.only and not any(word in name for word in args.only):
                    continue
                line = measure(name, page, api_side, args.repeat, args.warmup)
                lines.append(line)
                print(render_line(line), flush=True)
            decision = decision_round_trip(client, args.repeat)
            print(f"decision round trip (queue, htmx): p50 {decision['p50_ms']:.1f} ms, p95 {decision['p95_ms']:.1f} "
                  f"ms over {decision['n']}  (aim p95 < {AIM_DECISION_P95_MS:.0f} ms: "
                  f"{verdict(decision['p95_ms'] < AIM_DECISION_P95_MS)})", flush=True)
            weight = page_weight(client)
            print(f"first-load weight of /vurdering: {weight['total_bytes']:,} bytes (HTML {weight['html_bytes']:,}, "
                  f"CSS and JS {weight['asset_bytes']:,}; aim < {AIM_WEIGHT_BYTES:,}: "
                  f"{verdict(weight['total_bytes'] < AIM_WEIGHT_BYTES)})", flush=True)
        outer.rollback()
    engine.dispose()
    return {"date": date.today().isoformat(), "database": "sqlite-demo" if args.sqlite_demo else "postgresql",
            "repeat": args.repeat, "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                               "load_average": os.getloadavg()},
            "lines": [asdict(line) for line in lines], "decision": decision, "weight": weight}


def decision_round_trip(client: Any, repeat: int) -> dict[str, Any]:
    """Confirm the first report of the queue from the queue's panel (htmx), `repeat` times: each answer is
    the next report's panel, whose form carries what the next decision needs."""
    html = client.get("/vurdering").text
    times: list[float] = []
    for _ in range(repeat):
        found = re.search(r'action="/avvik/(\d+)/vurdering"', html)
        if found is None:
            break
        fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', html))
        fields["decision"] = "confirm"
        start = time.perf_counter()
        answer = client.post(f"/avvik/{found.group(1)}/vurdering", data=fields,
                             headers={"HX-Request": "true", "X-CSRF-Token": fields["csrf_token"]})
        times.append((time.perf_counter() - start) * 1000)
        if answer.status_code != 200:
            raise SystemExit(f"decision: {answer.status_code}")
        html = answer.text.replace("&amp;", "&")
    if not times:
        raise SystemExit("no decision could be made")
    return {"n": len(times), "p50_ms": round(percentile(times, 50), 1), "p95_ms": round(percentile(times, 95), 1)}


def page_weight(client: Any) -> dict[str, int]:
    """Bytes of the queue page's HTML and every stylesheet and script it loads (uncompressed)."""
    html = client.get("/vurdering").content
    assets = re.findall(rb'(?:href|src)="(/static/[^"]+)"', html)
    asset_bytes = sum(len(client.get(path.decode()).content) for path in assets)
    return {"html_bytes": len(html), "asset_bytes": asset_bytes, "total_bytes": len(html) + asset_bytes}


COLUMNS = [table.Column("page", 26), table.Column("page p50", 9, ".1f"), table.Column("page p95", 9, ".1f"),
           table.Column("API p50", 8, ".1f"), table.Column("API p95", 8, ".1f"), table.Column("ratio p95", 9, ".2f")]
HEADER = table.header(COLUMNS, f"aims (p95 < {AIM_P95_MS:.0f} ms, ≤ {AIM_RATIO}× the API)")


def render_line(line: Line) -> str:
    """One printed line of the table."""
    return table.line(COLUMNS, [line.page, line.page_p50_ms, line.page_p95_ms, line.api_p50_ms, line.api_p95_ms,
                                line.ratio_p95], [line.meets_p95, line.meets_ratio])


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the options, measure, print (and optionally write) the figures."""
    from bench import gen_reports

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    gen_reports.add_arguments(parser)
    parser.add_argument("--sqlite-demo", type=int, default=0, metavar="N",
                        help="instead: a new SQLite database with N reports (checks the script, not a figure)")
    table.add_run_options(parser, "page")
    args = parser.parse_args(argv)
    table.check_run_options(parser, args)
    print(HEADER, flush=True)
    figures = run(args)
    table.write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
