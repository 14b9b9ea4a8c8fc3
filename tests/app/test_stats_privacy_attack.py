"""A differencing adversary against the dashboard statistics, on both engines.

The adversary is a dashboard. Over a seeded data set with many small cells it sends every combination of a
bounded but substantial space of what a dashboard may ask (every period of the data at each granularity and
overlapping two-month ranges, every department, agency, target group, service and category, department ×
target group, every `by` dimension and pair; counts, trend, collaboration matrix, estimate, live quality).

It is given more than any real caller has: the exact set of reports behind every published number (the test
knows the truth). From that it derives, for any set of reports S, the values of |S| consistent with
everything published, and so it can use any difference of two answers whose reports nest (a filter minus a
finer filter, a total minus a cell, overlapping periods, one endpoint against another), and any table's
total minus its other cells when its cells partition the total:

- a shown count v: |S| = v when exact (the old behaviour); |S| ∈ [v − 2, v + 2] when perturbed (the noise
  bound is public), and |S| ≥ 1 (a true zero is always shown as 0);
- a hidden count: 1 ≤ |S| ≤ k − 1 (old) or k − 1 + 2 (perturbed);
- A ⊋ B: |A \\ B| ∈ [lo(A) − hi(B), hi(A) − lo(B)];
- a partition T = C₁ ⊔ … ⊔ Cₘ: |Cᵢ| ∈ [lo(T) − Σⱼ≠ᵢ hi(Cⱼ), hi(T) − Σⱼ≠ᵢ lo(Cⱼ)].

A hidden value is *recovered* when the set of |S| consistent with all of that is a single value in 1..k−1.
The same adversary run on the true counts with the old cell-by-cell suppression recovers many (so the attack
is not vacuous, and it finds the issue's reproductions); on the published answers it recovers none.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from app.auth.principal import Role
from app.privacy.cellkey import NOISE_BOUND
from app.privacy.models import CellKeySecret
from app.stats.pairs import agency_pair, pairs, reporting_service
from tests.conftest import bearer
from tests.helpers import report

OSLO = ZoneInfo("Europe/Oslo")
K = 5
TARGET = "samhandling_barn_unge"
AGENCIES = {"Etat for barn og familie": "barn_og_familie", "Etat for skole": "skole",
            "Etat for barnehage": "barnehage", "Etat for helsetjenester": "helsetjenester", "Etat for idrett": "idrett"}
UNITS = {"barn_og_familie": "Helsestasjon Fana", "skole": "Garnes skole", "barnehage": "Søreide barnehage",
         "helsetjenester": "Legevakten", "idrett": "Idrettsservice"}
DEPARTMENTS = {"barn_og_familie": "BBSM", "skole": "BBS", "barnehage": "BBS", "helsetjenester": "BEHO",
               "idrett": "BNKI"}
# Skewed, so that most combinations are small.
GROUPS = [("barn_6_12", 8), ("barn_1_5", 4), ("ungdom_13_17", 3), ("gravide_og_spedbarn", 1), ("voksne", 1)]
SERVICES = [("skole", 6), ("barnevern", 3), ("helsestasjon", 3), ("bup", 1), ("fastlege", 1)]
CATEGORIES = [("Samhandling barn og unge", 5), ("Informasjonsplikt", 2), ("Kommunikasjon og samhandling", 2),
              ("IKT", 1)]
MONTHS = [f"2026-{m:02d}" for m in range(1, 7)]
LAST_DAY = {"2026-01": 31, "2026-02": 28, "2026-03": 31, "2026-04": 30, "2026-05": 31, "2026-06": 30}


def weighted(rng: random.Random, items: list[tuple[str, int]], most: int) -> list[str]:
    chosen: set[str] = set()
    for _ in range(rng.randint(0, most)):
        chosen.add(rng.choices([c for c, _ in items], weights=[w for _, w in items])[0])
    return sorted(chosen)


def seed_reports(n: int) -> list[dict[str, Any]]:
    rng = random.Random(12)
    out = []
    for i in range(n):
        agency_label = rng.choices(list(AGENCIES), weights=[5, 6, 3, 2, 1])[0]
        month = rng.randint(1, 6)
        when = datetime(2026, month, rng.randint(1, 28), 12, 0, tzinfo=OSLO)
        out.append(report(
            f"ATK-{i}", source_system="attack", reported_at=when.isoformat(), occurred_at=when.isoformat(),
            reported_category=rng.choices([c for c, _ in CATEGORIES], weights=[w for _, w in CATEGORIES])[0],
            reporting_unit={"agency": agency_label, "unit": UNITS[AGENCIES[agency_label]]},
            target_groups=weighted(rng, GROUPS, 2), services_involved=weighted(rng, SERVICES, 2)))
    return out


# --------------------------------------------------------------------------------------------------
# What a dashboard may send (the bounded space), and which reports each published number counts


def ranges() -> list[tuple[str, str] | None]:
    """No range, each month, each quarter, the half year, and overlapping two-month ranges."""
    spans = [(m, m) for m in MONTHS] + [("2026-01", "2026-03"), ("2026-04", "2026-06"), ("2026-01", "2026-06")]
    spans += [(MONTHS[i], MONTHS[i + 1]) for i in range(5)]
    return [None, *spans]


def filters() -> list[dict[str, str]]:
    """None; each department, agency, target group, service, category; department × target group."""
    departments = sorted(set(DEPARTMENTS.values()))
    single = ([{"department": d} for d in departments] + [{"agency": a} for a in AGENCIES.values()]
              + [{"target_group": g} for g, _ in GROUPS] + [{"service": s} for s, _ in SERVICES]
              + [{"category": c} for c in (TARGET, "informasjonsplikt", "kommunikasjon_og_samhandling", "ikt")])
    return [{}, *single, *({"department": d, "target_group": g} for d in departments for g, _ in GROUPS)]


def range_params(span: tuple[str, str] | None) -> dict[str, str]:
    if span is None:
        return {}
    return {"reported_from": f"{span[0]}-01", "reported_to": f"{span[1]}-{LAST_DAY[span[1]]}"}


@dataclass
class Truth:
    """The reports as the test knows them (read back through the admin API after scoring and reviews)."""

    items: list[dict[str, Any]]
    children: dict[str, set[str]]
    middle: float
    reviewed: dict[int, str]  # report id -> decision

    def matches(self, item: dict[str, Any], f: dict[str, str], span: tuple[str, str] | None) -> bool:
        unit = item["reporting_unit"]
        if "department" in f and unit["department"] != f["department"]:
            return False
        if "agency" in f and unit["agency"] != f["agency"]:
            return False
        if "target_group" in f and f["target_group"] not in labels(item, "target_group"):
            return False
        if "service" in f and f["service"] not in labels(item, "service"):
            return False
        if "category" in f and item["confirmed_category"] not in self.children[f["category"]]:
            return False
        return span is None or span[0] <= month(item) <= span[1]

    def select(self, f: dict[str, str], span: tuple[str, str] | None) -> list[dict[str, Any]]:
        return [i for i in self.items if self.matches(i, f, span)]


def month(item: dict[str, Any]) -> str:
    return datetime.fromisoformat(item["reported_at"]).astimezone(OSLO).strftime("%Y-%m")


def period_of(item: dict[str, Any], granularity: str) -> str:
    m = month(item)
    if granularity == "year":
        return m[:4]
    if granularity == "quarter":
        return f"{m[:4]}-Q{(int(m[5:]) - 1) // 3 + 1}"
    return m


def labels(item: dict[str, Any], dimension: str) -> set[str]:
    return {lab["code"] for lab in item["labels"]
            if lab["dimension"] == dimension and lab["provenance"] != "classifier"}


def values(item: dict[str, Any], dimension: str, granularity: str) -> set[str | None]:
    if dimension == "period":
        return {period_of(item, granularity)}
    if dimension in ("target_group", "service"):
        found: set[str | None] = set(labels(item, dimension))
        return found or {None}
    if dimension == "category":
        return {item["confirmed_category"]}
    return {item["reporting_unit"][dimension]}


@dataclass(frozen=True)
class Number:
    """One published number: the reports behind it, what was shown, and where."""

    reports: frozenset[int]
    value: int | None
    suppressed: bool
    where: str


# --------------------------------------------------------------------------------------------------
# Asking: every combination, each published number paired with the reports it counts


def ask(dashboard: TestClient, truth: Truth) -> tuple[list[Number], list[tuple[Number, list[Number]]], int]:
    """Every request of the space; the published numbers, the tables whose cells partition their total, and
    how many requests were sent."""
    numbers: list[Number] = []
    partitions: list[tuple[Number, list[Number]]] = []
    sent = 0
    dimensions = ["period", "target_group", "service", "department", "agency", "category"]
    single_valued = {"period", "department", "agency", "category"}

    def get(path: str, params: dict[str, Any]) -> dict[str, Any]:
        nonlocal sent
        sent += 1
        answer = dashboard.get(path, params=params)
        assert answer.status_code == 200, (path, params, answer.text)
        return answer.json()

    def counts(by: list[str], granularity: str, f: dict[str, str], span: tuple[str, str] | None) -> None:
        body = get("/api/v1/stats/counts", {"by": by, "period": granularity, **f, **range_params(span)})
        chosen = truth.select(f, span)
        where = f"counts by={by} period={granularity} {f} {span}"
        total = Number(frozenset(i["id"] for i in chosen), body["total"]["confirmed"]["value"],
                       body["total"]["confirmed"]["suppressed"], where + " total")
        numbers.append(total)
        cells = []
        for row in body["rows"]:
            key = tuple(row["key"][d] for d in by)
            members = frozenset(i["id"] for i in chosen if all(
                key[n] in values(i, d, granularity) for n, d in enumerate(by)))
            cell = Number(members, row["confirmed"]["value"], row["confirmed"]["suppressed"], f"{where} cell {key}")
            numbers.append(cell)
            cells.append(cell)
        if len(by) == 1 and by[0] in single_valued:
            partitions.append((total, cells))

    for span in ranges():  # every grouping and pair over every range, no filter
        for by in [[d] for d in dimensions[1:]] + [list(p) for p in itertools.combinations(dimensions[1:], 2)]:
            counts(by, "month", {}, span)
    for granularity in ("month", "quarter", "year"):
        for by in [["period"]] + [["period", d] for d in dimensions[1:]]:
            counts(by, granularity, {}, None)
    for f in filters()[1:]:  # every filter: by period at two granularities, each other dimension by quarter
        counts(["period"], "month", f, None)
        counts(["period"], "quarter", f, None)
        for span in (None, ("2026-01", "2026-03"), ("2026-04", "2026-06")):
            for d in dimensions[1:]:
                if d not in f:
                    counts([d], "month", f, span)

    for f in filters():
        everything = {key: f[key] for key in ("department", "agency") if key in f}
        for granularity in ("month", "quarter", "year"):
            body = get("/api/v1/stats/trend", {"period": granularity, **f})
            for point in body["points"]:
                in_period = [i for i in truth.select(f, None) if period_of(i, granularity) == point["period"]]
                numbers.append(Number(frozenset(i["id"] for i in in_period), point["count"],
                                      point["count"] is None, f"trend {f} {granularity} {point['period']}"))
                base = [i for i in truth.select(everything, None) if period_of(i, granularity) == point["period"]]
                numbers.append(Number(frozenset(i["id"] for i in base), point["all_reports"],
                                      point["all_reports"] is None, f"trend all {f} {granularity} {point['period']}"))
        for span in (None, ("2026-01", "2026-03"), ("2026-04", "2026-06"), ("2026-03", "2026-03")):
            matrix(get("/api/v1/stats/collaboration-matrix", {**f, **range_params(span)}), f, span, truth, numbers)
            estimate(get("/api/v1/stats/estimate", {**f, **range_params(span)}), f, span, truth, numbers)
    quality(get("/api/v1/models/active/quality", {}), truth, numbers)
    return numbers, partitions, sent


def matrix(body: dict[str, Any], f: dict[str, str], span: tuple[str, str] | None, truth: Truth,
           numbers: list[Number]) -> None:
    chosen = truth.select({"category": TARGET, **f}, span)
    where = f"matrix {f} {span}"
    numbers.append(Number(frozenset(i["id"] for i in chosen), body["reports"], body["reports_suppressed"], where))
    service: dict[tuple[str, str, bool], set[int]] = {}
    agency: dict[tuple[str, str, bool], set[int]] = {}
    for item in chosen:
        codes = labels(item, "service")
        unit = item["reporting_unit"]
        for p in pairs(codes, reporting_service(unit["agency"], unit["unit"], codes)):
            service.setdefault(p, set()).add(item["id"])
            agency.setdefault(agency_pair(p), set()).add(item["id"])
    for kind, found in (("service_pairs", service), ("agency_pairs", agency)):
        shown = {(p["a"], p["b"], p["directed"]): p["count"] for p in body[kind]}
        for pair, ids in found.items():
            numbers.append(Number(frozenset(ids), shown.get(pair), pair not in shown, f"{where} {kind} {pair}"))
        assert set(shown) <= set(found)


def estimate(body: dict[str, Any], f: dict[str, str], span: tuple[str, str] | None, truth: Truth,
             numbers: list[Number]) -> None:
    chosen = truth.select(f, span)
    where = f"estimate {f} {span}"
    numbers.append(Number(frozenset(i["id"] for i in chosen if i["confirmed_category"] == TARGET),
                          body["confirmed"], body["confirmed"] is None, where + " confirmed"))
    undecided = [i for i in chosen if i["confirmed_category"] != TARGET and i["id"] not in truth.reviewed]

    def band(item: dict[str, Any]) -> str:
        if item["score"] is None:
            return "unscored"
        if not item["flagged"]:
            return "unflagged"
        return "flag_high" if item["score"] >= truth.middle else "flag_low"

    reviewed = [i for i in truth.items if i["id"] in truth.reviewed]
    for stratum in body["strata"]:
        name = stratum["name"]
        numbers.append(Number(frozenset(i["id"] for i in undecided if band(i) == name), stratum["unreviewed_reports"],
                              stratum["unreviewed_reports"] is None, f"{where} {name} unreviewed"))
        if name in ("flag_high", "flag_low"):
            mine = [i for i in reviewed if band(i) == name]
            numbers.append(Number(frozenset(i["id"] for i in mine), stratum["reviewed"], stratum["reviewed"] is None,
                                  f"estimate reviewed {name}"))
            numbers.append(Number(frozenset(i["id"] for i in mine if truth.reviewed[i["id"]] == "confirm"),
                                  stratum["confirmed_in_review"], stratum["confirmed_in_review"] is None,
                                  f"estimate confirmed in review {name}"))


def quality(body: dict[str, Any], truth: Truth, numbers: list[Number]) -> None:
    for line in (body["overall"], *body["by_department"]):
        mine = [i for i in truth.items if line["department"] is None
                or i["reporting_unit"]["department"] == line["department"]]
        sets = {"reviewed_flags": [i for i in mine if i["id"] in truth.reviewed],
                "confirmed_flags": [i for i in mine if truth.reviewed.get(i["id"]) == "confirm"],
                "waiting_for_review": [i for i in mine if i["flagged"] and i["id"] not in truth.reviewed]}
        for name, members in sets.items():
            numbers.append(Number(frozenset(i["id"] for i in members), line[name], line[name] is None,
                                  f"quality {line['department']} {name}"))


# --------------------------------------------------------------------------------------------------
# The adversary


Interval = tuple[int, int]


def observed(number: Number, perturbed: bool) -> Interval:
    """What one published number says about the size of its set of reports."""
    slack = NOISE_BOUND if perturbed else 0
    if number.suppressed:
        return 1, K - 1 + slack
    assert number.value is not None
    if number.value == 0:
        return 0, 0
    return max(1, number.value - slack), number.value + slack


def bitmask(reports: frozenset[int], index: dict[int, int]) -> int:
    return sum(1 << index[r] for r in reports)


@dataclass
class Attack:
    """The derived knowledge, the number of differences tried, and the hidden values pinned down."""

    combinations: int
    differences: int
    recovered: dict[frozenset[int], int]


def attack(numbers: list[Number], partitions: list[tuple[Number, list[Number]]], perturbed: bool,
           requests: int) -> Attack:
    """Intersect everything each published number, each nested pair and each partition implies."""
    known: dict[frozenset[int], Interval] = {}

    def learn(reports: frozenset[int], interval: Interval) -> None:
        low, high = known.get(reports, (0, 10**9))
        low, high = max(low, interval[0], 0), min(high, interval[1])
        assert low <= len(reports) <= high, ("unsound", sorted(reports), interval)  # the attack must be right
        known[reports] = (low, high)

    for number in numbers:
        learn(number.reports, observed(number, perturbed))
    differences = 0
    for total, cells in partitions:  # total minus the other cells
        if frozenset().union(*(c.reports for c in cells)) != total.reports:
            continue
        bounds = [known[c.reports] for c in cells]
        t = known[total.reports]
        low_sum, high_sum = sum(b[0] for b in bounds), sum(b[1] for b in bounds)
        for cell, (low, high) in zip(cells, bounds, strict=True):
            differences += 1
            learn(cell.reports, (t[0] - (high_sum - high), t[1] - (low_sum - low)))
    # Every pair of published sets where one contains the other: their difference, bit-packed for numpy.
    sets = list(known)
    everyone = sorted(set().union(*sets))
    index = {r: n for n, r in enumerate(everyone)}
    words = (len(everyone) + 63) // 64
    packed = np.zeros((len(sets), words), dtype=np.uint64)
    for row, reports in enumerate(sets):
        mask = bitmask(reports, index)
        for w in range(words):
            packed[row, w] = (mask >> (64 * w)) & (2**64 - 1)
    sizes = np.array([len(s) for s in sets])
    bounds = dict(known)
    for b, small in enumerate(sets):
        supersets = np.nonzero(((packed & packed[b]) == packed[b]).all(axis=1) & (sizes > sizes[b]))[0]
        for a in supersets:
            big = sets[a]
            differences += 1
            (a_low, a_high), (b_low, b_high) = bounds[big], bounds[small]
            learn(big - small, (a_low - b_high, a_high - b_low))
    recovered = {s: low for s, (low, high) in known.items() if low == high and 0 < low < K}
    return Attack(combinations=requests, differences=differences, recovered=recovered)


# --------------------------------------------------------------------------------------------------


FIXED_SECRET = "attack test: fixed so that every run publishes the same noise"


def fix_secret(session: Session) -> None:
    """Replace the installation's random secret (migration 0010) within the test's transaction, so that the
    test is the same on every run."""
    session.execute(update(CellKeySecret).values(secret=FIXED_SECRET))
    session.flush()


@pytest.fixture
def attacked(make_app: Callable[..., FastAPI], api_keys: dict[Role, str],
             session: Session) -> Iterator[tuple[TestClient, Truth]]:
    """240 scored reports over six months, some flags reviewed; a dashboard client and the truth."""
    fix_secret(session)
    with TestClient(make_app(), headers=bearer(api_keys[Role.ADMIN])) as admin:
        results = admin.post("/api/v1/reports/batch", json={"reports": seed_reports(240)}).json()["results"]
        ids = [r["id"] for r in results]
        flagged = [i for i in admin.get("/api/v1/reports", params={"limit": 500}).json()["items"]
                   if i["flagged"] and i["id"] in set(ids)]
        rng = random.Random(5)
        reviewed = {item["id"]: rng.choice(["confirm", "reject"]) for item in flagged[:14]}
        for report_id, decision in reviewed.items():
            answer = admin.post(f"/api/v1/reports/{report_id}/review", json={"decision": decision})
            assert answer.status_code in (200, 201), answer.text
        items = [i for i in admin.get("/api/v1/reports", params={"limit": 500}).json()["items"] if i["id"] in set(ids)]
        # `flagged` in a list means "flagged and waiting for a decision"; the truth needs the classifier's flag,
        # which is what the bands, live quality and the queue count by (as the list showed before the reviews).
        classifier_flagged = {i["id"] for i in flagged}
        for item in items:
            item["flagged"] = item["id"] in classifier_flagged
        taxonomy = admin.get("/api/v1/taxonomy").json()
        models = admin.get("/api/v1/models").json()
    children: dict[str, set[str]] = {}

    def walk(node: dict[str, Any]) -> set[str]:
        codes = {node["code"]}.union(*(walk(c) for c in node["children"]))
        children[node["code"]] = codes
        return codes

    for node in taxonomy["categories"]:
        walk(node)
    threshold = next(m["threshold"] for m in models if m["active"])
    truth = Truth(items=items, children=children, middle=(threshold + 1) / 2, reviewed=reviewed)
    with TestClient(make_app(), headers=bearer(api_keys[Role.DASHBOARD])) as dashboard:
        yield dashboard, truth


def test_no_difference_of_dashboard_answers_recovers_a_hidden_count(attacked: tuple[TestClient, Truth]) -> None:
    dashboard, truth = attacked
    numbers, partitions, requests = ask(dashboard, truth)

    # The same reports always get the same number, whichever endpoint or filter publishes them.
    by_set: dict[frozenset[int], set[tuple[int | None, bool]]] = {}
    for number in numbers:
        by_set.setdefault(number.reports, set()).add((number.value, number.suppressed))
    assert all(len(shown) == 1 for shown in by_set.values()), [s for s in by_set.values() if len(s) > 1][:3]

    # The old behaviour: the true counts, each hidden from 1 to k − 1.
    raw = [Number(n.reports, None if 0 < len(n.reports) < K else len(n.reports), 0 < len(n.reports) < K, n.where)
           for n in numbers]
    same = {id(n): r for n, r in zip(numbers, raw, strict=True)}
    old = attack(raw, [(same[id(t)], [same[id(c)] for c in cs]) for t, cs in partitions], perturbed=False,
                 requests=requests)
    new = attack(numbers, partitions, perturbed=True, requests=requests)
    hidden = sum(1 for s in by_set if 0 < len(s) < K)
    print(f"\n{requests} requests, {len(numbers)} published numbers over {len(by_set)} sets of reports "
          f"({hidden} with a true count 1..{K - 1}); {new.differences} differences tried; "
          f"recovered exactly: {len(old.recovered)} with exact counts and cell suppression, "
          f"{len(new.recovered)} with cell-key perturbation")
    # The cost in accuracy: every shown non-zero count against the truth.
    errors = [n.value - len(n.reports) for n in numbers if n.value and not n.suppressed]
    print(f"accuracy: {len(errors)} shown non-zero counts, mean absolute error "
          f"{sum(map(abs, errors)) / len(errors):.3f}, mean error {sum(errors) / len(errors):+.3f}, "
          f"largest {max(map(abs, errors))}; hidden: {sum(n.suppressed for n in numbers)} of {len(numbers)}")
    assert max(map(abs, errors)) <= NOISE_BOUND
    assert len(old.recovered) >= 20  # the attack is not vacuous
    # ... and it finds the reproductions: a department's month minus the same with a target group,
    # and a two-month range minus one of its months.
    finer, overlapping = [], []
    for department in sorted(set(DEPARTMENTS.values())):
        for m, following in itertools.pairwise(MONTHS):
            coarse = frozenset(i["id"] for i in truth.select({"department": department}, (m, m)))
            fine = frozenset(i["id"] for i in truth.select({"department": department, "target_group": "barn_6_12"},
                                                           (m, m)))
            if len(fine) >= K and 0 < len(coarse - fine) < K:
                finer.append(coarse - fine)
            both = frozenset(i["id"] for i in truth.select({"department": department}, (m, following)))
            if len(both) >= K and len(coarse) >= K and 0 < len(both - coarse) < K:
                overlapping.append(both - coarse)
    assert finer and overlapping
    assert all(s in old.recovered for s in finer + overlapping)
    assert not any(s in new.recovered for s in finer + overlapping)
    assert new.recovered == {}, [(sorted(s), v) for s, v in list(new.recovered.items())[:5]]
