"""Statistics equal a plain Python computation over the same seeded random data, on both engines."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.auth.principal import Role
from tests.conftest import bearer
from tests.helpers import report

OSLO = ZoneInfo("Europe/Oslo")
GROUPS = ["barn_1_5", "barn_6_12", "ungdom_13_17", "foreldre_og_familie", "voksne", "eldre"]
SERVICES = ["skole", "barnehage", "helsestasjon", "barnevern", "nav", "sykehus"]
CATEGORIES = ["Kommunikasjon og samhandling", "Samhandling barn og unge", "Pasient-/brukerskade", "IKT",
              "Informasjonsplikt", "Noe ukjent"]
UNITS = ["Etat for skole – Garnes skole", "Etat for barn og familie – Helsestasjon Fana",
         "Etat for sosiale tjenester – NAV Årstad", "Etat for barnehage – Søreide barnehage", None]
TEXTS = [("Ingen beskjed til helsesykepleier", "Skolen ga ikke beskjed om ny elev til skolehelsetjenesten."),
         ("Fall i sklia", "Gutten falt i barnehagen og slo kneet."),
         ("Skrivar øydelagd", "Skrivaren på kontoret virkar ikkje."),
         ("Epikrise mangler", "Helsestasjonen fikk ikke epikrise fra sykehuset etter fødselen.")]


def random_reports(seed: int, n: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    start = datetime(2025, 11, 30, 22, 0, tzinfo=OSLO)
    reports = []
    for i in range(n):
        # Many reports within an hour of a month boundary, where UTC and Oslo months differ.
        if rng.random() < 0.4:
            boundary = datetime(2026, rng.randint(1, 5), 1, 0, 0, tzinfo=OSLO)
            when = boundary + timedelta(minutes=rng.randint(-90, 90))
        else:
            when = start + timedelta(hours=rng.randint(0, 24 * 150))
        title, description = rng.choice(TEXTS)
        reports.append(report(
            f"ST-{seed}-{i}", source_system="stats", title=title, description=description,
            reported_category=rng.choice(CATEGORIES), reported_at=when.astimezone(ZoneInfo("UTC")).isoformat(),
            reporting_unit=rng.choice(UNITS), status=rng.choice(["registrert", "lukket"]),
            target_groups=rng.sample(GROUPS, rng.randint(0, 2)),
            services_involved=rng.sample(SERVICES, rng.randint(0, 2)),
        ))
    return reports


@pytest.fixture
def seeded(client: TestClient) -> list[dict[str, Any]]:
    """60 random reports (some reviewed), returned as the API shows them."""
    answer = client.post("/api/v1/reports/batch", json={"reports": random_reports(7, 60)})
    ids = [r["id"] for r in answer.json()["results"]]
    rng = random.Random(8)
    for report_id in rng.sample(ids, 10):
        client.post(f"/api/v1/reports/{report_id}/review", json={"decision": rng.choice(["confirm", "reject"])})
    return [client.get(f"/api/v1/reports/{i}").json() for i in ids]


def period(item: dict[str, Any], kind: str) -> str:
    local = datetime.fromisoformat(item["reported_at"]).astimezone(OSLO)
    if kind == "year":
        return f"{local.year:04d}"
    if kind == "quarter":
        return f"{local.year:04d}-Q{(local.month - 1) // 3 + 1}"
    return f"{local.year:04d}-{local.month:02d}"


def values(item: dict[str, Any], dimension: str, kind: str, suggested: bool) -> list[str | None]:
    provenances = {"reporter", "adviser", *({"classifier"} if suggested else set())}
    if dimension == "period":
        return [period(item, kind)]
    if dimension in ("target_group", "service"):
        return [lab["code"] for lab in item["labels"] if lab["dimension"] == dimension
                and lab["provenance"] in provenances]
    if dimension == "category":
        return [item["suggested_category"] if suggested else item["confirmed_category"]]
    if dimension == "provenance":
        return [item["suggested_category_provenance"] if suggested else item["confirmed_category_provenance"]]
    if dimension in ("department", "agency"):
        return [item["reporting_unit"][dimension]]
    return [item[dimension]]


def expected(items: list[dict[str, Any]], by: list[str], kind: str, suggested: bool) -> Counter[tuple[Any, ...]]:
    counts: Counter[tuple[Any, ...]] = Counter()
    for item in items:
        firsts = values(item, by[0], kind, suggested)
        seconds = values(item, by[1], kind, suggested) if len(by) == 2 else [None]
        for a in set(firsts):
            for b in set(seconds):
                counts[(a, b) if len(by) == 2 else (a,)] += 1
    return counts


@pytest.mark.parametrize("by", [["period"], ["category"], ["target_group"], ["service"], ["department"],
                                ["provenance"], ["status"], ["period", "target_group"],
                                ["category", "service"], ["target_group", "service"]])
@pytest.mark.parametrize("kind", ["month", "quarter"])
def test_counts_equal_python(client: TestClient, seeded: list[dict[str, Any]], by: list[str], kind: str) -> None:
    answer = client.get("/api/v1/stats/counts", params={"by": by, "period": kind, "include_suggested": True})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    ours = list(seeded)
    for view, suggested in (("confirmed", False), ("with_suggestions", True)):
        got = {tuple(row["key"][d] for d in by): row[view]["value"] for row in body["rows"]}
        want = expected(ours, by, kind, suggested)
        assert {k: v for k, v in got.items() if v} == dict(want), view
    assert body["total"]["confirmed"]["value"] == len(ours)


def test_empty_periods_are_zeros(client: TestClient, seeded: list[dict[str, Any]]) -> None:
    body = client.get("/api/v1/stats/counts", params={"by": ["period"], "reported_from": "2025-06-01",
                                                      "reported_to": "2026-07-31"}).json()
    months = [row["key"]["period"] for row in body["rows"]]
    assert months[0] == "2025-06" and months[-1] == "2026-07" and len(months) == 14
    assert body["rows"][0]["confirmed"]["value"] == 0
    assert body["rows"][0]["with_suggestions"] is None


def test_dashboards_get_small_counts_suppressed(make_app: Callable[..., FastAPI], api_keys: dict[Role, str],
                                                client: TestClient, seeded: list[dict[str, Any]]) -> None:
    exact = client.get("/api/v1/stats/counts", params={"by": ["department"]}).json()
    with TestClient(make_app(), headers=bearer(api_keys[Role.DASHBOARD])) as dashboard:
        hidden = dashboard.get("/api/v1/stats/counts", params={"by": ["department"]}).json()
        assert dashboard.get("/api/v1/reports").status_code == 403
    assert hidden["suppression"]
    for shown, truth in zip(hidden["rows"], exact["rows"], strict=True):
        n = truth["confirmed"]["value"]
        if 0 < n < 5:
            assert shown["confirmed"] == {"value": None, "suppressed": True}
        elif not shown["confirmed"]["suppressed"]:
            assert shown["confirmed"]["value"] == n
    assert sum(r["confirmed"]["suppressed"] for r in hidden["rows"]) != 1


def test_counts_validate_their_dimensions(client: TestClient) -> None:
    assert client.get("/api/v1/stats/counts", params={"by": "colour"}).status_code == 422
    assert client.get("/api/v1/stats/counts", params={"by": ["period", "service", "unit"]}).status_code == 422
    assert client.get("/api/v1/stats/counts").status_code == 422


def test_trend_equals_python(client: TestClient, seeded: list[dict[str, Any]]) -> None:
    body = client.get("/api/v1/stats/trend", params={"category": "kommunikasjon_og_samhandling",
                                                     "reported_from": "2026-01-01", "reported_to": "2026-05-31"}).json()
    in_category = {"kommunikasjon_og_samhandling", "samhandling_barn_unge", "informasjonsplikt"}
    counted = Counter(period(i, "month") for i in seeded if i["confirmed_category"] in in_category)
    everything = Counter(period(i, "month") for i in seeded)
    months = ["2026-01", "2026-02", "2026-03", "2026-04", "2026-05"]
    assert [p["period"] for p in body["points"]] == months
    for index, point in enumerate(body["points"]):
        key = months[index]
        assert point["count"] == counted[key]
        assert point["all_reports"] == everything[key]
        previous = "2025-12" if index == 0 else months[index - 1]
        assert point["change_from_previous"] == counted[key] - counted[previous]
        assert point["change_from_last_year"] == counted[key] - counted[f"2025-{key[5:]}"]


def test_collaboration_matrix_equals_python(client: TestClient, seeded: list[dict[str, Any]]) -> None:
    from app.stats.pairs import agency_pair, pairs, reporting_service

    body = client.get("/api/v1/stats/collaboration-matrix", params={"category": "kommunikasjon_og_samhandling"})
    assert body.status_code == 200, body.text
    in_category = {"kommunikasjon_og_samhandling", "samhandling_barn_unge", "informasjonsplikt"}
    chosen = [i for i in seeded if i["confirmed_category"] in in_category]
    services: Counter[tuple[str, str, bool]] = Counter()
    agencies: Counter[tuple[str, str, bool]] = Counter()
    for item in chosen:
        codes = {lab["code"] for lab in item["labels"] if lab["dimension"] == "service"
                 and lab["provenance"] != "classifier"}
        unit = item["reporting_unit"]
        found = pairs(codes, reporting_service(unit["agency"], unit["unit"], codes))
        services.update(found)
        agencies.update({agency_pair(p) for p in found})
    result = body.json()
    assert result["reports"] == len(chosen)
    assert {(p["a"], p["b"], p["directed"]): p["count"] for p in result["service_pairs"]} == dict(services)
    assert {(p["a"], p["b"], p["directed"]): p["count"] for p in result["agency_pairs"]} == dict(agencies)


def test_reporting_side_is_kept_apart_when_known() -> None:
    from app.stats.pairs import pairs, reporting_service

    school = reporting_service("skole", "Garnes skole", {"skole", "skolehelsetjeneste", "it_system"})
    assert pairs({"skole", "skolehelsetjeneste", "it_system"}, school) == {("skole", "skolehelsetjeneste", True)}
    unknown = reporting_service("barn_og_familie", "Fagteam 3", {"barnevern", "skole"})
    assert unknown is None
    assert pairs({"barnevern", "skole", "bup"}, None) == {("barnevern", "bup", False), ("barnevern", "skole", False),
                                                          ("bup", "skole", False)}


def test_dashboards_see_no_small_numbers_in_trend_or_matrix(make_app: Callable[..., FastAPI],
                                                           api_keys: dict[Role, str],
                                                           seeded: list[dict[str, Any]]) -> None:
    with TestClient(make_app(), headers=bearer(api_keys[Role.DASHBOARD])) as dashboard:
        trend = dashboard.get("/api/v1/stats/trend", params={"category": "samhandling_barn_unge"}).json()
        matrix = dashboard.get("/api/v1/stats/collaboration-matrix").json()
    assert all(p["count"] is None or p["count"] == 0 or p["count"] >= 5 for p in trend["points"])
    assert all(p["change_from_previous"] is None for p in trend["points"] if p["suppressed"])
    assert all(p["count"] >= 5 for p in matrix["service_pairs"] + matrix["agency_pairs"])


RECURRING = [
    ("Ingen tilbakemelding fra barnevernet", "Barnehagen sendte bekymringsmelding og fikk ingen tilbakemelding "
     "fra barnevernet etter tre uker."),
    ("Fikk ikke tilbakemelding på bekymringsmelding", "Vi har ikke fått tilbakemelding fra barnevernet på "
     "bekymringsmeldingen vi sendte for en måned siden."),
    ("Barnevernet svarer ikke", "Bekymringsmelding sendt i mars, ingen tilbakemelding fra barnevernet ennå."),
    ("Ikkje tilbakemelding frå barnevernet", "Barnehagen har ikkje fått tilbakemelding frå barnevernet på "
     "bekymringsmeldinga."),
]


def test_similar_reports_and_recurring_failures(client: TestClient) -> None:
    items = [report(f"REC-{i}", source_system="recurring", title=t, description=d,
                    reported_category="Samhandling barn og unge", target_groups=["barn_1_5"],
                    services_involved=["barnehage", "barnevern"], reporting_unit="Etat for barnehage – Sol barnehage")
             for i, (t, d) in enumerate(RECURRING)]
    items.append(report("REC-other", source_system="recurring", title="Skrivar øydelagd", reported_category="IKT",
                        description="Skrivaren virkar ikkje.", services_involved=["it_system"]))
    ids = [r["id"] for r in client.post("/api/v1/reports/batch", json={"reports": items}).json()["results"]]
    similar = client.get(f"/api/v1/reports/{ids[0]}/similar", params={"limit": 4}).json()
    ranked = [i["report"]["id"] for i in similar["items"]]
    assert set(ranked[:3]) == set(ids[1:4])
    assert ids[4] not in ranked[:3]
    assert client.get("/api/v1/reports/999999999/similar").status_code == 404

    groups = client.get("/api/v1/stats/recurring", params={"min_size": 3}).json()["groups"]
    group = next(g for g in groups if set(ids[:4]) <= set(g["report_ids"]))
    assert group["services"] == ["barnehage", "barnevern"]
    assert group["units"] == ["Sol barnehage"]
    assert "tilbakemelding" in group["words"] or "barnevernet" in group["words"]
