"""The reproductions of issue 12 (section 1): what a dashboard could work out, and what it may ask, now."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.auth.keys import create_key
from app.auth.principal import Role
from app.privacy.cellkey import NOISE_BOUND
from tests.app.test_stats_privacy_attack import fix_secret
from tests.conftest import bearer
from tests.helpers import report

K = 5
BEHO = {"agency": "Etat for helsetjenester", "unit": "Legevakten"}


def consistent(answer: dict[str, Any], whole: dict[str, Any], part: dict[str, Any]) -> set[int]:
    """The hidden counts (1..k−1) of `whole` minus `part` that both published cells allow, given what the
    answer says of its method (the public noise bound when perturbed; exact otherwise)."""
    bound = NOISE_BOUND if "cell-key" in (answer["suppression"] or "") else 0

    def bounds(cell: dict[str, Any]) -> tuple[int, int]:
        if cell["suppressed"]:
            return 1, K - 1 + bound
        return cell["value"] - bound, cell["value"] + bound

    (w_low, w_high), (p_low, p_high) = bounds(whole), bounds(part)
    return {n for n in range(1, K) if w_low - p_high <= n <= w_high - p_low}


def deliver(client: TestClient, items: list[dict[str, Any]]) -> None:
    answer = client.post("/api/v1/reports/batch", json={"reports": items})
    assert answer.status_code == 200 and all(r["outcome"] == "created" for r in answer.json()["results"])


@pytest.fixture
def dashboard(make_app: Callable[..., FastAPI], api_keys: dict[Role, str], session: Session) -> Iterator[TestClient]:
    fix_secret(session)
    with TestClient(make_app(), headers=bearer(api_keys[Role.DASHBOARD])) as client:
        yield client


def many(prefix: str, n: int, **fields: Any) -> list[dict[str, Any]]:
    return [report(f"{prefix}-{i}", source_system="issue12", reported_at=f"2026-03-{1 + i % 27:02d}T10:00:00+01:00",
                   **fields) for i in range(n)]


def test_a_total_minus_a_cell_no_longer_reveals_the_hidden_cell(client: TestClient, dashboard: TestClient) -> None:
    deliver(client, many("TG", 40, target_groups=["barn_6_12"]) + many("TGX", 1, target_groups=["gravide_og_spedbarn"]))
    exact = client.get("/api/v1/stats/counts", params={"by": "target_group"}).json()
    assert exact["total"]["confirmed"]["value"] - next(
        r["confirmed"]["value"] for r in exact["rows"] if r["key"]["target_group"] == "barn_6_12") == 1
    body = dashboard.get("/api/v1/stats/counts", params={"by": "target_group"}).json()
    cell = next(r["confirmed"] for r in body["rows"] if r["key"]["target_group"] == "barn_6_12")
    hidden = next(r["confirmed"] for r in body["rows"] if r["key"]["target_group"] == "gravide_og_spedbarn")
    assert hidden == {"value": None, "suppressed": True}
    assert len(consistent(body, body["total"]["confirmed"], cell)) > 1
    assert abs(body["total"]["confirmed"]["value"] - 41) <= NOISE_BOUND


def test_a_filter_minus_a_finer_filter_no_longer_reveals_one_report(client: TestClient, dashboard: TestClient) -> None:
    deliver(client, many("BE", 30, reporting_unit=BEHO, target_groups=["barn_6_12"])
            + many("BEX", 1, reporting_unit=BEHO, target_groups=["eldre"]))
    coarse = {"by": "period", "department": "BEHO", "reported_from": "2026-03-01", "reported_to": "2026-03-31"}
    fine = {**coarse, "target_group": "barn_6_12"}
    exact = [client.get("/api/v1/stats/counts", params=p).json()["rows"][0]["confirmed"]["value"]
             for p in (coarse, fine)]
    assert exact[0] - exact[1] == 1
    answers = [dashboard.get("/api/v1/stats/counts", params=p).json() for p in (coarse, fine)]
    whole, part = (a["rows"][0]["confirmed"] for a in answers)
    assert len(consistent(answers[0], whole, part)) > 1
    # The same with the trend: the same reports get the same published count as in the counts.
    trend = [dashboard.get("/api/v1/stats/trend", params={k: v for k, v in p.items() if k != "by"}).json()["points"]
             for p in (coarse, fine)]
    assert [t[0]["count"] for t in trend] == [whole["value"], part["value"]]


def test_day_ranges_free_text_and_units_are_refused_to_dashboards_only(client: TestClient,
                                                                       dashboard: TestClient) -> None:
    deliver(client, many("DAY", 6, reporting_unit=BEHO))
    # Overlapping day ranges (one day apart) and any range that is not whole months.
    refused = [({"reported_from": "2026-02-14"}, "reported_from"),
               ({"reported_from": "2026-02-15", "reported_to": "2026-03-31"}, "reported_from"),
               ({"reported_from": "2026-03-01", "reported_to": "2026-03-14"}, "reported_to"),
               ({"q": "kontaktforbud"}, "q"), ({"unit": "Åsane skole SFO"}, "unit"), ({"status": "lukket"}, "status"),
               ({"children_and_youth": "true"}, "children_and_youth"), ({"provenance": "reporter"}, "provenance"),
               ({"target_group": ["barn_6_12", "barn_1_5"]}, "target_group")]
    for path in ("/api/v1/stats/counts", "/api/v1/stats/trend", "/api/v1/stats/collaboration-matrix",
                 "/api/v1/stats/estimate", "/api/v1/models/active/quality"):
        base = {"by": "department"} if path.endswith("counts") else {}
        for params, field in [*refused, ({"external_id": "BK-1"}, "external_id")]:
            answer = dashboard.get(path, params={**base, **params})
            assert answer.status_code == 422, (path, params, answer.text)
            assert field in [f["field"] for f in answer.json()["fields"]], (path, params, answer.text)
            assert "kontaktforbud" not in answer.text and "Åsane" not in answer.text
        if path.endswith("counts"):
            answer = dashboard.get(path, params={"by": "unit"})
            assert answer.status_code == 422 and answer.json()["fields"][0]["field"] == "by"
        # Advisers and admins keep every filter.
        for params, _ in refused:
            if path.endswith("quality"):
                continue
            assert client.get(path, params={**base, **params}).status_code == 200, (path, params)
    assert dashboard.get("/api/v1/stats/counts", params={"by": "department", "reported_from": "2026-03-01",
                                                         "reported_to": "2026-03-31"}).status_code == 200


def test_trend_hides_a_small_all_reports(client: TestClient, dashboard: TestClient) -> None:
    deliver(client, many("ONE", 1, reporting_unit=BEHO))
    params = {"department": "BEHO", "reported_from": "2026-03-01", "reported_to": "2026-03-31"}
    assert client.get("/api/v1/stats/trend", params=params).json()["points"][0]["all_reports"] == 1
    point = dashboard.get("/api/v1/stats/trend", params=params).json()["points"][0]
    assert point["all_reports"] is None and point["count"] is None and point["suppressed"]
    assert point["share"] is None and point["change_from_previous"] is None


def reviewed_flags(client: TestClient) -> list[dict[str, Any]]:
    """Reports of three departments the classifier flags, two of them reviewed."""
    text = {"title": "Ingen beskjed til helsesykepleier", "reported_category": "Kommunikasjon og samhandling",
            "description": "Skolen ga ikke beskjed om ny elev til skolehelsetjenesten, og barnevernet fikk ikke "
                           "melding om bekymringen for barnet."}
    deliver(client, many("QB", 3, reporting_unit={"agency": "Etat for skole", "unit": "Garnes skole"}, **text)
            + many("QH", 2, reporting_unit=BEHO, **text)
            + many("QS", 2, reporting_unit={"agency": "Etat for barn og familie", "unit": "Helsestasjon Fana"},
                   **text))
    items = [i for i in client.get("/api/v1/reports", params={"limit": 500}).json()["items"] if i["flagged"]]
    assert {i["reporting_unit"]["department"] for i in items} == {"BBS", "BEHO", "BBSM"}
    for item in items[:2]:
        assert client.post(f"/api/v1/reports/{item['id']}/review", json={"decision": "confirm"}).status_code == 201
    return items


def test_quality_and_estimate_bands_hide_small_counts_from_dashboards(client: TestClient,
                                                                      dashboard: TestClient) -> None:
    reviewed_flags(client)
    exact = client.get("/api/v1/models/active/quality").json()
    assert 0 < exact["overall"]["reviewed_flags"] < K
    quality = dashboard.get("/api/v1/models/active/quality").json()
    for line in (quality["overall"], *quality["by_department"]):
        for name in ("reviewed_flags", "confirmed_flags", "waiting_for_review", "reviewed_audit_sample",
                     "missed_in_audit_sample"):
            assert line[name] is None or line[name] == 0 or line[name] >= K, (line, name)
    assert quality["overall"]["reviewed_flags"] is None and quality["overall"]["precision"] is None
    bands = client.get("/api/v1/stats/estimate").json()["strata"]
    assert any(0 < (s["reviewed"] or 0) < K for s in bands)
    estimate = dashboard.get("/api/v1/stats/estimate").json()
    for stratum in estimate["strata"]:
        for name in ("unreviewed_reports", "reviewed", "confirmed_in_review"):
            assert stratum[name] is None or stratum[name] == 0 or stratum[name] >= K, (stratum, name)
    assert estimate["suppressed"] and estimate["interval_95"] is None


def test_an_adviser_limited_to_a_department_sees_only_its_quality(client: TestClient, session: Session,
                                                                  make_app: Callable[..., FastAPI]) -> None:
    reviewed_flags(client)
    _, key = create_key(session, "adviser-bbsm", Role.ADVISER, ["BBSM"])
    with TestClient(make_app(), headers=bearer(key)) as adviser:
        quality = adviser.get("/api/v1/models/active/quality").json()
    everything = client.get("/api/v1/models/active/quality").json()
    assert {line["department"] for line in everything["by_department"]} >= {"BBS", "BEHO", "BBSM"}
    assert [line["department"] for line in quality["by_department"]] == ["BBSM"]
    bbsm = next(line for line in everything["by_department"] if line["department"] == "BBSM")
    assert quality["overall"] == {**bbsm, "department": None}
