"""Statistics equal a plain Python computation over the same seeded random data, on both engines."""

from __future__ import annotations

import csv
import io
import random
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
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


def local_day(item: dict[str, Any]) -> str:
    return datetime.fromisoformat(item["reported_at"]).astimezone(OSLO).date().isoformat()


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
    # Every count within the noise bound of the truth, zeros exact, perturbed counts below 5 hidden; the total
    # is a cell of its own.
    for shown, truth in zip([*hidden["rows"], hidden["total"]], [*exact["rows"], exact["total"]], strict=True):
        n, published = truth["confirmed"]["value"], shown["confirmed"]
        if n == 0:
            assert published == {"value": 0, "suppressed": False}
        elif published["suppressed"]:
            assert published["value"] is None and n <= 4 + 2
        else:
            assert published["value"] >= 5 and abs(published["value"] - n) <= 2
        if 0 < n < 3:
            assert published["suppressed"]


def test_counts_validate_their_dimensions(client: TestClient) -> None:
    assert client.get("/api/v1/stats/counts", params={"by": "colour"}).status_code == 422
    assert client.get("/api/v1/stats/counts", params={"by": ["period", "service", "unit"]}).status_code == 422
    assert client.get("/api/v1/stats/counts").status_code == 422
    # Found by the fuzzer: the same dimension twice reached the database as a 500 (503 on SQLite).
    twice = client.get("/api/v1/stats/counts", params={"by": ["target_group", "target_group"]})
    assert twice.status_code == 422 and twice.json()["fields"][0]["field"] == "by"


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


# --------------------------------------------------------------------------------------------------
# CSV: every statistic as a table that parses back to its JSON answer

def csv_lines(answer: Any) -> list[dict[str, str]]:
    """The lines of a CSV answer, after checking it is what Norwegian Excel opens: BOM, semicolons."""
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.content.startswith("\ufeff".encode())
    text = answer.content.decode("utf-8-sig")
    assert ";" in text.splitlines()[0]
    return list(csv.DictReader(io.StringIO(text), delimiter=";"))


def number(text: str) -> Any:
    """A CSV figure back as JSON has it: empty and `suppressed` are null, decimal comma, true/false."""
    if text in ("", "suppressed"):
        return None
    if text in ("true", "false"):
        return text == "true"
    if "," in text:
        return float(text.replace(",", "."))
    return int(text)


def cell(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    return {"value": number(text), "suppressed": text == "suppressed"}


def codes(text: str) -> list[str]:
    return text.split(",") if text else []


def counts_from_csv(lines: list[dict[str, str]], by: list[str]) -> dict[str, Any]:
    rows = [{"key": {d: line[d] or None for d in by}, "confirmed": cell(line["confirmed"]),
             "with_suggestions": cell(line.get("with_suggestions"))} for line in lines if line["row"] == "cell"]
    total = next(line for line in lines if line["row"] == "total")
    return {"rows": rows, "total": {"key": {}, "confirmed": cell(total["confirmed"]),
                                    "with_suggestions": cell(total.get("with_suggestions"))}}


def trend_from_csv(lines: list[dict[str, str]]) -> list[dict[str, Any]]:
    return [{"period": line["period"], **{name: number(line[name]) for name in
             ("count", "suppressed", "all_reports", "share", "change_from_previous", "change_from_last_year")}}
            for line in lines]


def matrix_from_csv(lines: list[dict[str, str]]) -> dict[str, Any]:
    def pairs(kind: str) -> list[dict[str, Any]]:
        return [{"a": line["a"], "b": line["b"], "directed": number(line["directed"]), "count": number(line["count"])}
                for line in lines if line["row"] == kind]

    figures = {line["row"]: line["value"] for line in lines if line["row"] in ("reports", "hidden_pairs")}
    return {"reports": number(figures["reports"]), "reports_suppressed": figures["reports"] == "suppressed",
            "service_pairs": pairs("service_pair"),
            "agency_pairs": pairs("agency_pair"), "hidden_pairs": number(figures["hidden_pairs"])}


def estimate_from_csv(lines: list[dict[str, str]]) -> dict[str, Any]:
    figures = {line["row"]: line["value"] for line in lines if line["row"] != "stratum"}

    def decimal(text: str) -> float | None:
        return None if text == "suppressed" else float(text.replace(",", "."))

    low, high = number(figures["interval_95_low"]), number(figures["interval_95_high"])
    return {"confirmed": number(figures["confirmed"]),
            "estimated_unconfirmed": decimal(figures["estimated_unconfirmed"]),
            "estimated_total": decimal(figures["estimated_total"]),
            "interval_95": None if low is None else [low, high],
            "suppressed": "suppressed" in figures.values(),
            "model_version": figures["model_version"] or None, "method": figures["method"],
            "strata": [{"name": line["stratum"], "suppressed": "suppressed" in line.values(),
                        **{name: number(line[name]) for name in
                           ("unreviewed_reports", "reviewed", "confirmed_in_review")}}
                       for line in lines if line["row"] == "stratum"]}


def recurring_from_csv(lines: list[dict[str, str]]) -> dict[str, Any]:
    groups = [{"size": number(line["size"]), "services": codes(line["services"]), "units": codes(line["units"]),
               "words": codes(line["words"]), "example_ids": [int(i) for i in codes(line["example_ids"])],
               "report_ids": [int(i) for i in codes(line["report_ids"])]} for line in lines if line["row"] == "group"]
    candidates = next(number(line["value"]) for line in lines if line["row"] == "candidates")
    return {"candidates": candidates, "groups": groups}


def similar_from_csv(lines: list[dict[str, str]]) -> dict[str, Any]:
    def report(line: dict[str, str]) -> dict[str, Any]:
        text = {name: line[name] or None for name in ("source_system", "external_id", "title", "reported_category",
                                                      "category", "occurred_at", "reported_at", "status", "severity",
                                                      "confirmed_category", "confirmed_category_provenance",
                                                      "suggested_category", "suggested_category_provenance")}
        return {**text, "id": int(line["id"]), "category_mapped": number(line["category_mapped"]),
                "flagged": number(line["flagged"]), "score": number(line["score"]),
                "reporting_unit": {"department": line["department"] or None, "agency": line["agency"] or None,
                                   "unit": line["unit"] or None, "unit_code": line["unit_code"] or None,
                                   "as_sent": line["unit_as_sent"] or None},
                "target_groups": codes(line["target_groups"]), "services_involved": codes(line["services_involved"]),
                "labels": [dict(zip(("dimension", "code", "provenance"), label.split(":"), strict=True))
                           for label in codes(line["labels"])]}

    figures = {line["row"]: number(line["value"]) for line in lines if line["row"] in ("report_id", "candidates")}
    return {"report_id": figures["report_id"], "candidates": figures["candidates"],
            "items": [{"similarity": number(line["similarity"]), "report": report(line)}
                      for line in lines if line["row"] == "report"]}


@pytest.mark.parametrize("ask", ["format", "accept"])
def test_counts_as_csv_equal_the_json_answer(client: TestClient, seeded: list[dict[str, Any]], ask: str) -> None:
    for by in (["period", "target_group"], ["department"], ["category", "service"]):
        params: dict[str, Any] = {"by": by, "include_suggested": True, "reported_from": "2025-10-01"}
        body = client.get("/api/v1/stats/counts", params=params).json()
        answer = (client.get("/api/v1/stats/counts", params={**params, "format": "csv"}) if ask == "format" else
                  client.get("/api/v1/stats/counts", params=params, headers={"Accept": "text/csv"}))
        parsed = counts_from_csv(csv_lines(answer), by)
        assert parsed["rows"] == body["rows"]
        assert parsed["total"] == body["total"]
    plain = client.get("/api/v1/stats/counts", params={"by": ["status"], "format": "csv"})
    assert csv_lines(plain)[0].keys() == {"row", "status", "confirmed"}  # no suggestions asked, no column


def test_trend_matrix_and_estimate_as_csv_equal_the_json_answer(client: TestClient,
                                                                seeded: list[dict[str, Any]]) -> None:
    params = {"category": "kommunikasjon_og_samhandling", "reported_from": "2026-01-01", "reported_to": "2026-05-31"}
    trend = client.get("/api/v1/stats/trend", params=params).json()
    assert any(p["change_from_previous"] is not None and p["change_from_previous"] < 0 for p in trend["points"]) or \
        any(p["share"] for p in trend["points"])
    lines = csv_lines(client.get("/api/v1/stats/trend", params={**params, "format": "csv"}))
    assert trend_from_csv(lines) == trend["points"]

    matrix_params = {"category": "kommunikasjon_og_samhandling"}
    matrix = client.get("/api/v1/stats/collaboration-matrix", params=matrix_params).json()
    assert matrix["service_pairs"]
    lines = csv_lines(client.get("/api/v1/stats/collaboration-matrix", params=matrix_params,
                                 headers={"Accept": "text/csv"}))
    assert matrix_from_csv(lines) == matrix

    estimate = client.get("/api/v1/stats/estimate").json()
    lines = csv_lines(client.get("/api/v1/stats/estimate", params={"format": "csv"}))
    assert estimate_from_csv(lines) == estimate


def test_negative_changes_and_shares_are_numbers_excel_reads(client: TestClient,
                                                             seeded: list[dict[str, Any]]) -> None:
    text = client.get("/api/v1/stats/trend", params={"format": "csv"}).content.decode("utf-8-sig")
    body = client.get("/api/v1/stats/trend").json()
    lines = list(csv.DictReader(io.StringIO(text), delimiter=";"))
    for point, line in zip(body["points"], lines, strict=True):
        change = point["change_from_previous"]
        if change is not None and change < 0:
            assert line["change_from_previous"] == str(change)  # not made inert like a formula: a number
        if point["share"] not in (None, 0, 1):
            assert "," in line["share"] and "." not in line["share"]  # decimal comma


def test_recurring_and_similar_as_csv_equal_the_json_answer_and_are_audited(client: TestClient,
                                                                           session: Session) -> None:
    items = [report(f"RCSV-{i}", source_system="recurring-csv", title=t, description=d,
                    reported_category="Samhandling barn og unge", target_groups=["barn_1_5"],
                    services_involved=["barnehage", "barnevern"], reporting_unit="Etat for barnehage – Sol barnehage")
             for i, (t, d) in enumerate(RECURRING)]
    ids = [r["id"] for r in client.post("/api/v1/reports/batch", json={"reports": items}).json()["results"]]

    recurring = client.get("/api/v1/stats/recurring", params={"min_size": 3}).json()
    assert recurring["groups"]
    answer = client.get("/api/v1/stats/recurring", params={"min_size": 3, "format": "csv"})
    assert recurring_from_csv(csv_lines(answer)) == recurring
    event = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert event is not None and event.action == "stats.recurring" and event.query is not None
    assert event.query["format"] == "csv"
    assert set(ids) <= set(event.report_ids)

    similar = client.get(f"/api/v1/reports/{ids[0]}/similar", params={"limit": 3}).json()
    answer = client.get(f"/api/v1/reports/{ids[0]}/similar", params={"limit": 3}, headers={"Accept": "text/csv"})
    assert similar_from_csv(csv_lines(answer)) == similar
    event = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert event is not None and event.action == "report.similar"
    assert set(event.report_ids) == {ids[0], *(i["report"]["id"] for i in similar["items"])}


def test_dashboards_get_the_same_suppression_in_csv(make_app: Callable[..., FastAPI], api_keys: dict[Role, str],
                                                    seeded: list[dict[str, Any]]) -> None:
    with TestClient(make_app(), headers=bearer(api_keys[Role.DASHBOARD])) as dashboard:
        for by in (["period", "target_group"], ["category", "department"]):
            params = {"by": by, "include_suggested": True}
            body = dashboard.get("/api/v1/stats/counts", params=params).json()
            assert any(r["confirmed"]["suppressed"] for r in body["rows"])  # 60 reports: small cells abound
            lines = csv_lines(dashboard.get("/api/v1/stats/counts", params={**params, "format": "csv"}))
            assert counts_from_csv(lines, by)["rows"] == body["rows"]
            hidden = [line for line in lines if line["confirmed"] == "suppressed"]
            assert len(hidden) == sum(r["confirmed"]["suppressed"] for r in body["rows"])
            assert all(number(line["confirmed"]) is None or number(line["confirmed"]) == 0
                       or number(line["confirmed"]) >= 5 for line in lines)
        trend_params = {"category": "samhandling_barn_unge"}
        trend = dashboard.get("/api/v1/stats/trend", params=trend_params).json()
        lines = csv_lines(dashboard.get("/api/v1/stats/trend", params=trend_params, headers={"Accept": "text/csv"}))
        assert trend_from_csv(lines) == trend["points"]
        assert [line["count"] == "suppressed" for line in lines] == [
            p["suppressed"] and p["count"] is None for p in trend["points"]]
        matrix = dashboard.get("/api/v1/stats/collaboration-matrix").json()
        lines = csv_lines(dashboard.get("/api/v1/stats/collaboration-matrix", params={"format": "csv"}))
        assert matrix_from_csv(lines) == matrix
        assert all(number(line["count"]) >= 5 for line in lines if line["row"].endswith("_pair"))
        # An agency with few reports in a month: the estimate's small figures are hidden too, and what would
        # reveal them.
        agency = next(i["reporting_unit"]["agency"] for i in seeded if i["reporting_unit"]["unit"] == "Garnes skole")
        per_month = Counter(period(i, "month") for i in seeded if i["reporting_unit"]["agency"] == agency)
        month = next(m for m, n in sorted(per_month.items()) if 0 < n < 3)
        last_day = (datetime(int(month[:4]) + int(month[5:]) // 12, int(month[5:]) % 12 + 1, 1) - timedelta(days=1))
        few = {"agency": agency, "reported_from": f"{month}-01", "reported_to": last_day.date().isoformat()}
        estimate = dashboard.get("/api/v1/stats/estimate", params=few).json()
        assert estimate["suppressed"] and estimate["estimated_total"] is None and estimate["interval_95"] is None
        assert all(s["unreviewed_reports"] is None or s["unreviewed_reports"] == 0 or s["unreviewed_reports"] >= 5
                   for s in estimate["strata"])
        lines = csv_lines(dashboard.get("/api/v1/stats/estimate", params={**few, "format": "csv"}))
        assert estimate_from_csv(lines) == estimate
        # The routes that show titles stay closed to dashboards, in every format.
        assert dashboard.get("/api/v1/stats/recurring", params={"format": "csv"}).status_code == 403
        assert dashboard.get("/api/v1/reports/1/similar", headers={"Accept": "text/csv"}).status_code == 403


def test_unknown_format_is_422_naming_the_field(client: TestClient) -> None:
    answer = client.get("/api/v1/stats/counts", params={"by": "department", "format": "xlsx"})
    assert answer.status_code == 422
    assert "format" in answer.text


# --------------------------------------------------------------------------------------------------
# The labels' copy of the reporting date (migration 0007) stays right whatever writes labels or reports

def label_dates(session: Session, report_id: int) -> set[Any]:
    session.expire_all()
    return {row[0] for row in session.execute(text(
        "SELECT CAST(l.reported_on AS TEXT) = CAST(r.reported_on AS TEXT) FROM report_label l "
        "JOIN report r ON r.id = l.report_id WHERE l.report_id = :id"), {"id": report_id})}


def test_labels_keep_the_reporting_date_through_ingest_review_and_rescore(client: TestClient, session: Session,
                                                                          connection: Any) -> None:
    from zoneinfo import ZoneInfo as Zone

    from app.db import make_sessionmaker
    from app.registry.rescore import rescore

    first = report("DAYS-1", source_system="days", reported_at="2026-01-31T23:30:00+01:00",
                   target_groups=["barn_6_12"], services_involved=["skole", "barnevern"])
    report_id = client.post("/api/v1/reports", json=first).json()["id"]
    assert label_dates(session, report_id) == {True}
    by_month = {"by": ["period", "target_group"], "target_group": [], "reported_from": "2026-01-01",
                "reported_to": "2026-02-28"}

    def months() -> dict[str, int]:
        rows = client.get("/api/v1/stats/counts", params={**by_month, "unit": "Garnes skole"}).json()["rows"]
        labels_only = client.get("/api/v1/stats/counts", params=by_month).json()["rows"]
        mine = {r["key"]["period"]: r["confirmed"]["value"] for r in rows if r["key"]["target_group"] == "barn_6_12"}
        everyone = {r["key"]["period"]: r["confirmed"]["value"] for r in labels_only
                    if r["key"]["target_group"] == "barn_6_12"}
        assert everyone == mine  # the labels-only path and the joined path agree
        return mine

    assert months() == {"2026-01": 1, "2026-02": 0}
    # A new version moves the report into February (Oslo time): its labels move with it.
    moved = {**first, "source_version": 2, "reported_at": "2026-02-01T00:30:00+01:00"}
    assert client.post("/api/v1/reports", json=moved).status_code == 200
    assert label_dates(session, report_id) == {True}
    assert months() == {"2026-01": 0, "2026-02": 1}
    # A review rewrites the labels.
    review = {"decision": "correct", "category": "samhandling_barn_unge", "target_groups": ["barn_6_12", "barn_1_5"]}
    assert client.post(f"/api/v1/reports/{report_id}/review", json=review).status_code in (200, 201)
    assert label_dates(session, report_id) == {True}
    # Rescoring rewrites them again, for every report.
    rescore(make_sessionmaker(connection, join_transaction_mode="create_savepoint"), None, None, Zone("Europe/Oslo"))
    assert label_dates(session, report_id) == {True}
    assert months() == {"2026-01": 0, "2026-02": 1}


def test_a_label_written_without_its_date_gets_it_from_the_database(client: TestClient, session: Session) -> None:
    # Ingest writes the date itself (migration 0009); any other writer may leave it out, and the database
    # fills it in, on insert and on an update that moves the label to another report.
    ids = [client.post("/api/v1/reports", json=report(f"DAYS-H{n}", source_system="days", reported_at=when,
                                                      target_groups=[])).json()["id"]
           for n, when in enumerate(("2026-03-31T23:30:00+02:00", "2026-04-01T00:30:00+02:00"))]
    session.execute(text("INSERT INTO report_label (report_id, dimension, code, provenance) "
                         "VALUES (:id, 'target_group', 'eldre', 'adviser')"), {"id": ids[0]})
    assert label_dates(session, ids[0]) == {True}
    session.execute(text("UPDATE report_label SET report_id = :to WHERE report_id = :id AND code = 'eldre'"),
                    {"id": ids[0], "to": ids[1]})
    assert label_dates(session, ids[1]) == {True}
    assert session.scalar(text("SELECT CAST(reported_on AS TEXT) FROM report_label "
                               "WHERE report_id = :id AND code = 'eldre'"), {"id": ids[1]}) == "2026-04-01"


@pytest.mark.parametrize("by", [["period", "target_group"], ["period", "service"], ["target_group", "service"]])
def test_counts_under_a_filter_equal_python(client: TestClient, seeded: list[dict[str, Any]], by: list[str]) -> None:
    params = {"by": by, "include_suggested": True, "department": "BBS", "reported_from": "2026-01-01",
              "reported_to": "2026-03-31"}
    body = client.get("/api/v1/stats/counts", params=params).json()
    chosen = [i for i in seeded if i["reporting_unit"]["department"] == "BBS"
              and "2026-01" <= period(i, "month") <= "2026-03"]
    for view, suggested in (("confirmed", False), ("with_suggestions", True)):
        got = {tuple(row["key"][d] for d in by): row[view]["value"] for row in body["rows"]}
        assert {k: v for k, v in got.items() if v} == dict(expected(chosen, by, "month", suggested)), view
    assert body["total"]["confirmed"]["value"] == len(chosen)


# --------------------------------------------------------------------------------------------------
# The estimate's summary rows (migration 0008) agree with the tables they summarise, and the estimate
# counts what a plain Python computation over those tables counts.

def basis_disagreements(session: Session) -> dict[int, tuple[Any, Any]]:
    """Reports whose estimate_basis row differs from what report, report_score and review say (none: {})."""
    from sqlalchemy import text

    session.flush()
    session.expire_all()
    latest: dict[int, tuple[Any, ...]] = {}
    for row in session.execute(text("SELECT report_id, model_version, decision, category_code, flagged, score, "
                                    "audit_sample FROM review ORDER BY id")):
        latest[row[0]] = (row[1], row[2], row[3], bool(row[4]), row[5], bool(row[6]))  # the last one stays
    scores = {r[0]: (bool(r[1]), float(r[2])) for r in session.execute(
        text("SELECT report_id, flagged, score FROM report_score"))}
    truth = {r[0]: (str(r[1]), r[2], scores.get(r[0]), r[0] in latest, latest.get(r[0])) for r in session.execute(
        text("SELECT id, reported_on, confirmed_category_code FROM report"))}
    basis = {r[0]: (str(r[1]), r[2], None if r[3] is None else (bool(r[3]), float(r[4])), bool(r[5]),
                    None if r[7] is None else (r[6], r[7], r[8], bool(r[9]), r[10], bool(r[11])))
             for r in session.execute(text(
                 "SELECT report_id, reported_on, confirmed_category_code, flagged, score, reviewed, "
                 "review_model_version, review_decision, review_category_code, review_flagged, review_score, "
                 "review_audit_sample FROM estimate_basis"))}
    return {i: (truth.get(i), basis.get(i)) for i in set(truth) | set(basis) if truth.get(i) != basis.get(i)}


def test_estimate_basis_follows_ingest_changes_scores_and_reviews(client: TestClient, session: Session,
                                                                  connection: Any) -> None:
    from zoneinfo import ZoneInfo as Zone

    from sqlalchemy import text

    from app.db import make_sessionmaker
    from app.registry.rescore import rescore

    first = report("BASIS-1", source_system="basis", reported_at="2026-01-31T23:30:00+01:00",
                   reported_category="Informasjonsplikt", target_groups=["barn_6_12"])
    other = report("BASIS-2", source_system="basis", reported_at="2026-03-02T10:00:00+01:00")
    report_id = client.post("/api/v1/reports", json=first).json()["id"]
    other_id = client.post("/api/v1/reports", json=other).json()["id"]
    assert basis_disagreements(session) == {}
    row = session.execute(text("SELECT reported_on, confirmed_category_code, reviewed FROM estimate_basis "
                               "WHERE report_id = :id"), {"id": report_id}).one()
    assert (str(row[0]), row[1], bool(row[2])) == ("2026-01-31", "informasjonsplikt", False)
    # A new version moves the report into February (Oslo time) and into another category.
    moved = {**first, "source_version": 2, "reported_at": "2026-02-01T00:30:00+01:00",
             "reported_category": "Samhandling barn og unge"}
    assert client.post("/api/v1/reports", json=moved).status_code == 200
    assert basis_disagreements(session) == {}
    assert str(session.scalar(text("SELECT reported_on FROM estimate_basis WHERE report_id = :id"),
                              {"id": report_id})) == "2026-02-01"
    # A review decides it; a second review of the same report changes nothing more.
    for decision in ("reject", "confirm"):
        answer = client.post(f"/api/v1/reports/{report_id}/review", json={"decision": decision})
        assert answer.status_code in (200, 201), answer.text
        assert basis_disagreements(session) == {}
    # Rescoring replaces every score; a score written, changed and deleted by hand is followed too.
    rescore(make_sessionmaker(connection, join_transaction_mode="create_savepoint"), None, None, Zone("Europe/Oslo"))
    assert basis_disagreements(session) == {}
    session.execute(text("DELETE FROM report_score WHERE report_id = :id"), {"id": other_id})
    assert basis_disagreements(session) == {}
    session.execute(text(
        "INSERT INTO report_score (report_id, model_version, score, threshold, flagged, target_groups, services, "
        "explanation, scored_at) VALUES (:id, 'by-hand', 0.97, 0.5, TRUE, '[]', '[]', '[]', '2026-03-02 09:00:00')"),
        {"id": other_id})
    assert basis_disagreements(session) == {}
    session.execute(text("UPDATE report_score SET flagged = FALSE, score = 0.2 WHERE report_id = :id"),
                    {"id": other_id})
    assert basis_disagreements(session) == {}
    session.execute(text("DELETE FROM review WHERE report_id = :id"), {"id": report_id})
    assert basis_disagreements(session) == {}
    session.execute(text("DELETE FROM report WHERE id = :id"), {"id": other_id})
    assert basis_disagreements(session) == {}


@pytest.mark.parametrize("params", [{}, {"reported_from": "2026-01-01", "reported_to": "2026-03-31"},
                                    {"department": "BBS", "reported_from": "2026-02-01"}])
def test_estimate_strata_equal_python(client: TestClient, seeded: list[dict[str, Any]], session: Session,
                                      params: dict[str, str]) -> None:
    from sqlalchemy import text

    from app.registry.service import active_version
    from app.review.labels import is_case
    from app.review.models import Decision

    body = client.get("/api/v1/stats/estimate", params=params)
    assert body.status_code == 200, body.text
    result = body.json()
    version = active_version(session)
    threshold = session.scalar(text("SELECT threshold FROM model_version WHERE version = :v"), {"v": version})
    middle = ((threshold or 0.5) + 1) / 2
    by_id = {i["id"]: i for i in seeded}
    chosen = {i for i, item in by_id.items()
              if params.get("reported_from", "0000") <= local_day(item) <= params.get("reported_to", "9999")
              and (params.get("department") is None or item["reporting_unit"]["department"] == params["department"])}
    reviewed = set(session.scalars(text("SELECT report_id FROM review")))
    scores = {r[0]: (bool(r[1]), float(r[2])) for r in session.execute(
        text("SELECT report_id, flagged, score FROM report_score"))}
    confirmed = {i for i in chosen if by_id[i]["confirmed_category"] == "samhandling_barn_unge"}
    bands: Counter[str] = Counter()
    for i in chosen - confirmed - reviewed:
        flagged, score = scores.get(i, (None, 0.0))
        bands["unscored" if flagged is None else "flag_high" if flagged and score >= middle
              else "flag_low" if flagged else "unflagged"] += 1
    latest: dict[int, tuple[Any, ...]] = {}
    for row in session.execute(text("SELECT report_id, model_version, decision, category_code, flagged, score, "
                                    "audit_sample FROM review ORDER BY id")):
        latest[row[0]] = tuple(row[1:])
    rates: Counter[tuple[str, bool]] = Counter()
    for model, decision, category, flagged, score, sample in latest.values():
        if model != version:
            continue
        band = ("flag_high" if flagged and score >= middle else "flag_low" if flagged
                else "unflagged" if sample else "not_random")
        rates[band, is_case(Decision(decision), category)] += 1
    assert {s["name"]: (s["reviewed"], s["confirmed_in_review"]) for s in result["strata"]} == {
        name: (rates[name, True] + rates[name, False], rates[name, True])
        for name in ("flag_high", "flag_low", "unflagged", "unscored")}
    assert chosen, "the filter chose no report"
    assert result["confirmed"] == len(confirmed)
    assert {s["name"]: s["unreviewed_reports"] for s in result["strata"]} == {
        name: bands[name] for name in ("flag_high", "flag_low", "unflagged", "unscored")}
