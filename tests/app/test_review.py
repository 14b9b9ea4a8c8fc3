"""Flagging on ingest, provenance in lists, reviews, history and the review queue — with the real model."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from app.auth.keys import create_key
from app.auth.principal import Role
from app.report import export as report_export
from app.report.models import Report, ReportScore
from app.review.models import Review
from tests.conftest import bearer
from tests.helpers import POISON, delivered, inject_classifier_fault, report

POSITIVE = {
    "title": "Helsesykepleier fikk ikke beskjed om ny elev",
    "description": "Ny elev i 4. klasse med diabetes startet 3. mars. Skolen sendte ingen melding til "
                   "skolehelsetjenesten, og helsesykepleier fikk først vite det tre uker senere da mor ringte. "
                   "Eleven hadde ingen plan for insulin i skoletiden.",
    "reported_category": "Tjenesteutøvelse",
    "target_groups": [],
    "services_involved": [],
}
NEGATIVE = {
    "title": "Skrivaren på lærarrommet er øydelagd",
    "description": "Skrivaren i andre etasje har vore ute av drift sidan måndag. IT er varsla.",
    "reported_category": "IKT",
    "target_groups": [],
    "services_involved": [],
}


def flagged_report(client: TestClient, **overrides: Any) -> dict[str, Any]:
    stored = delivered(client, report(**{**POSITIVE, **overrides}))
    assert stored["outcome"] == "created"
    return stored


def ids(page: dict[str, Any]) -> set[int]:
    return {item["id"] for item in page["items"]}


def test_every_report_is_scored_on_arrival(client: TestClient) -> None:
    positive = flagged_report(client)
    negative = delivered(client, report(**NEGATIVE))
    assert positive["classification"]["flagged"] is True
    assert positive["classification"]["score"] > positive["classification"]["threshold"]
    assert positive["classification"]["model_version"]
    assert positive["classification"]["explanation"]
    assert "barn_6_12" in positive["classification"]["target_groups"]
    assert negative["classification"]["flagged"] is False
    batch = client.post("/api/v1/reports/batch", json={"reports": [report(**POSITIVE), report(**NEGATIVE)]}).json()
    flags = [client.get(f"/api/v1/reports/{r['id']}").json()["flagged"] for r in batch["results"]]
    assert flags == [True, False]


def test_a_report_with_digits_int_refuses_is_scored(client: TestClient) -> None:
    # "²" and "፩" pass str.isdigit but not int(): with a number beside them, scoring once raised a 500.
    text = "Gutten på 7 år bor i en leilighet på 40 m ² med mor (፩)."
    assert delivered(client, report(**{**POSITIVE, "description": text}))["classification"]["model_version"]
    batch = client.post("/api/v1/reports/batch", json={"reports": [report(**{**NEGATIVE, "description": text})]})
    assert batch.json()["counts"] == {"created": 1}


def test_a_report_the_classifier_fails_on_is_stored_unscored_and_logged(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A classifier bug on some rare input: ingest must store every report all the same.
    inject_classifier_fault(monkeypatch)
    poison = {**POSITIVE, "description": POSITIVE["description"] + " " + POISON}
    batch = client.post("/api/v1/reports/batch", json={"reports": [report(**POSITIVE), report(**poison),
                                                                   report(**NEGATIVE)]})
    assert batch.status_code == 200, batch.text
    assert batch.json()["counts"] == {"created": 3}
    stored = [client.get(f"/api/v1/reports/{r['id']}").json() for r in batch.json()["results"]]
    assert [r["classification"] is not None for r in stored] == [True, False, True]
    assert [r["flagged"] for r in stored] == [True, False, False]
    single = delivered(client, report(**poison))
    assert (single["outcome"], single["classification"]) == ("created", None)
    assert "injected classifier fault" in caplog.text
    assert "POISON" not in caplog.text  # the report's text stays out of the log


def test_a_report_filed_under_the_category_is_confirmed_by_its_reporter_not_flagged(client: TestClient) -> None:
    stored = flagged_report(client, reported_category="Samhandling barn og unge")
    assert stored["flagged"] is False
    assert (stored["confirmed_category"], stored["confirmed_category_provenance"]) == ("samhandling_barn_unge",
                                                                                      "reporter")


def test_suggestions_count_only_when_asked(client: TestClient) -> None:
    stored = flagged_report(client)
    assert (stored["suggested_category"], stored["suggested_category_provenance"]) == ("samhandling_barn_unge",
                                                                                      "classifier")
    query = {"category": "samhandling_barn_unge", "limit": 500}
    assert stored["id"] not in ids(client.get("/api/v1/reports", params=query).json())
    assert stored["id"] in ids(client.get("/api/v1/reports", params={**query, "include_suggested": True}).json())
    assert stored["id"] in ids(client.get("/api/v1/reports", params={"provenance": "classifier", "limit": 500}).json())
    children = {"children_and_youth": True, "limit": 500}
    assert stored["id"] not in ids(client.get("/api/v1/reports", params=children).json())
    assert stored["id"] in ids(client.get("/api/v1/reports", params={**children, "include_suggested": True}).json())


def test_confirm_then_reject_keeps_both_in_history(client: TestClient) -> None:
    # The older names are aliases of is_case and not_case, and are stored and answered as those.
    stored = flagged_report(client)
    confirm = client.post(f"/api/v1/reports/{stored['id']}/review", json={"decision": "confirm", "comment": "Ja"})
    assert confirm.status_code == 201
    again = client.post(f"/api/v1/reports/{stored['id']}/review", json={"decision": "confirm", "comment": "Ja"})
    assert (again.status_code, again.json()["id"]) == (200, confirm.json()["id"])
    listed = client.get("/api/v1/reports", params={"category": "samhandling_barn_unge", "limit": 500}).json()
    assert stored["id"] in ids(listed)
    detail = client.get(f"/api/v1/reports/{stored['id']}").json()
    assert detail["confirmed_category_provenance"] == "adviser"
    assert {lab["provenance"] for lab in detail["labels"]} == {"adviser"}

    reject = client.post(f"/api/v1/reports/{stored['id']}/review", json={"decision": "reject"})
    assert reject.status_code == 201
    history = client.get(f"/api/v1/reports/{stored['id']}/history").json()
    assert [(r["decision"], r["superseded"]) for r in history["reviews"]] == [("not_case", False), ("is_case", True)]
    assert history["reviews"][1]["flagged"] is True and history["reviews"][1]["score"] is not None
    assert stored["id"] not in ids(client.get("/api/v1/reports", params={
        "category": "samhandling_barn_unge", "include_suggested": True, "limit": 500}).json())


def test_a_correction_sets_category_and_codes(client: TestClient) -> None:
    stored = flagged_report(client)
    answer = client.post(f"/api/v1/reports/{stored['id']}/review", json={
        "decision": "correct", "category": "samhandling_barn_unge", "target_groups": ["ungdom_13_17"],
        "services": ["skole", "bup"]})
    assert answer.status_code == 201
    detail = client.get(f"/api/v1/reports/{stored['id']}").json()
    assert {(lab["dimension"], lab["code"]) for lab in detail["labels"]} == {
        ("target_group", "ungdom_13_17"), ("service", "skole"), ("service", "bup")}
    assert client.post(f"/api/v1/reports/{stored['id']}/review", json={"decision": "correct"}).status_code == 422
    bad = client.post(f"/api/v1/reports/{stored['id']}/review", json={"decision": "correct", "services": ["x"]})
    assert (bad.status_code, bad.json()["fields"][0]["field"]) == (422, "services[0]")


def test_an_update_from_the_quality_system_never_erases_the_review(client: TestClient) -> None:
    body = report(**POSITIVE)
    stored = client.post("/api/v1/reports", json=body).json()
    client.post(f"/api/v1/reports/{stored['id']}/review", json={"decision": "is_case"})
    updated = delivered(client, {**body, "source_version": 2, "status": "lukket", "reported_category": "HMS"})
    assert updated["outcome"] == "updated"
    assert (updated["confirmed_category"], updated["confirmed_category_provenance"]) == ("samhandling_barn_unge",
                                                                                        "adviser")
    assert len(client.get(f"/api/v1/reports/{stored['id']}/history").json()["reviews"]) == 1


def test_queue_lists_flagged_unreviewed_reports_by_score_or_uncertainty(make_app: Callable[..., FastAPI],
                                                                        api_keys: dict[Role, str]) -> None:
    with TestClient(make_app(audit_sample_share=0.0), headers=bearer(api_keys[Role.ADMIN])) as client:
        flagged = [flagged_report(client, title=f"Ingen beskjed til helsestasjonen {n}") for n in range(4)]
        queue = client.get("/api/v1/review-queue", params={"limit": 500}).json()
        scores = [i["report"]["score"] for i in queue["items"]]
        assert {r["id"] for r in flagged} <= {i["report"]["id"] for i in queue["items"]}
        assert scores == sorted(scores, reverse=True)
        uncertain = client.get("/api/v1/review-queue", params={"order": "uncertain", "limit": 500}).json()
        threshold = flagged[0]["classification"]["threshold"]
        distances = [abs(i["report"]["score"] - threshold) for i in uncertain["items"]]
        assert distances == sorted(distances)
        client.post(f"/api/v1/reports/{flagged[0]['id']}/review", json={"decision": "is_case"})
        after = {i["report"]["id"] for i in client.get("/api/v1/review-queue", params={"limit": 500}).json()["items"]}
        assert flagged[0]["id"] not in after and flagged[1]["id"] in after


def test_queue_pages_do_not_repeat(client: TestClient) -> None:
    for n in range(7):
        flagged_report(client, title=f"Melding om elev kom aldri fram {n}")
    seen: list[int] = []
    cursor = None
    while True:
        page = client.get("/api/v1/review-queue", params={"limit": 3, **({"cursor": cursor} if cursor else {})}).json()
        seen += [i["report"]["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) >= 7


def test_audit_sample_share_and_reproducibility(make_app: Callable[..., FastAPI], api_keys: dict[Role, str]) -> None:
    share = 0.1
    with TestClient(make_app(audit_sample_share=share), headers=bearer(api_keys[Role.ADMIN])) as client:
        batch = [report(f"SAMPLE-{n}", **NEGATIVE) for n in range(600)]
        assert client.post("/api/v1/reports/batch", json={"reports": batch}).json()["counts"] == {"created": 600}

        def sampled() -> set[int]:
            items = client.get("/api/v1/review-queue", params={"q": "skrivaren", "limit": 500}).json()["items"]
            more = client.get("/api/v1/review-queue", params={"q": "skrivaren", "limit": 500,
                                                              "order": "uncertain"}).json()["items"]
            assert all(i["audit_sample"] for i in items + more)
            return {i["report"]["id"] for i in items} | {i["report"]["id"] for i in more}

        first, second = sampled(), sampled()
        assert first == second
        # 600 draws at 10 %: 60 expected; 35..85 holds with probability > 0.999.
        assert 35 <= len(first) <= 85
    with TestClient(make_app(audit_sample_share=0.0), headers=bearer(api_keys[Role.ADMIN])) as client:
        items = client.get("/api/v1/review-queue", params={"q": "skrivaren", "limit": 500}).json()["items"]
        assert items == []


def test_reviews_respect_departments(client: TestClient, make_app: Callable[..., FastAPI], session: Session) -> None:
    school = flagged_report(client, reporting_unit="Etat for skole – Garnes skole")
    _, key = create_key(session, "adviser-bbsm-review", Role.ADVISER, ["BBSM"])
    with TestClient(make_app(), headers=bearer(key), raise_server_exceptions=False) as adviser:
        assert adviser.post(f"/api/v1/reports/{school['id']}/review", json={"decision": "is_case"}).status_code == 404
        assert adviser.get(f"/api/v1/reports/{school['id']}/history").status_code == 404
        queue = adviser.get("/api/v1/review-queue", params={"limit": 500}).json()
        assert school["id"] not in {i["report"]["id"] for i in queue["items"]}


def csv_rows(answer: Any) -> list[dict[str, str]]:
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.content.startswith("\ufeff".encode())
    return list(csv.DictReader(io.StringIO(answer.content.decode("utf-8-sig")), delimiter=";"))


def test_the_whole_queue_as_csv_in_queue_order_with_the_report_list_columns(
        make_app: Callable[..., FastAPI], api_keys: dict[Role, str], session: Session) -> None:
    with TestClient(make_app(audit_sample_share=0.0), headers=bearer(api_keys[Role.ADMIN])) as client:
        for n in range(7):
            flagged_report(client, title=f"Ingen beskjed til barnevernet {n}")
        pages: list[dict[str, Any]] = []
        cursor = None
        while True:  # the JSON queue, page by page, is what the CSV must hold in one piece
            page = client.get("/api/v1/review-queue", params={"order": "uncertain", "limit": 2,
                                                              **({"cursor": cursor} if cursor else {})}).json()
            pages += page["items"]
            if (cursor := page["next_cursor"]) is None:
                break
        rows = csv_rows(client.get("/api/v1/review-queue", params={"order": "uncertain", "limit": 2, "format": "csv"}))
        assert list(rows[0]) == ["position", "audit_sample", *report_export.COLUMNS]
        assert [int(r["id"]) for r in rows] == [i["report"]["id"] for i in pages]
        assert [int(r["position"]) for r in rows] == list(range(1, len(pages) + 1))
        first = pages[0]["report"]
        assert rows[0]["title"] == first["title"] and rows[0]["flagged"] == "true"
        assert rows[0]["score"] == str(round(first["score"], 4)).replace(".", ",")
        assert rows[0]["suggested_category"] == "samhandling_barn_unge"
        assert rows[0]["suggested_category_provenance"] == "classifier"
        by_accept = csv_rows(client.get("/api/v1/review-queue", params={"order": "uncertain"},
                                        headers={"Accept": "text/csv"}))
        assert by_accept == rows
    event = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert event is not None and event.action == "review.queue.export.csv"


def test_history_as_csv_one_row_per_review_newest_first(client: TestClient) -> None:
    report_id = flagged_report(client)["id"]
    client.post(f"/api/v1/reports/{report_id}/review", json={"decision": "is_case", "comment": "=1+1"})
    client.post(f"/api/v1/reports/{report_id}/review", json={"decision": "not_case"})
    rows = csv_rows(client.get(f"/api/v1/reports/{report_id}/history", params={"format": "csv"}))
    assert [r["decision"] for r in rows] == ["not_case", "is_case"]
    assert [r["superseded"] for r in rows] == ["false", "true"]
    assert rows[1]["comment"] == "'=1+1"  # inert in a spreadsheet
    assert client.get("/api/v1/reports/999999/history", params={"format": "csv"}).status_code == 404


def test_a_bad_filter_of_the_queue_csv_is_a_422_before_any_byte(client: TestClient) -> None:
    answer = client.get("/api/v1/review-queue", params={"format": "csv", "target_group": "nobody"})
    assert answer.status_code == 422
    assert "target_group" in answer.text


def queue_ids(client: TestClient, order: str, limit: int) -> list[int]:
    """Every report of the queue in this order, read page by page through the cursors."""
    seen: list[int] = []
    cursor = None
    while True:
        page = client.get("/api/v1/review-queue", params={"order": order, "limit": limit,
                                                          **({"cursor": cursor} if cursor else {})}).json()
        seen += [i["report"]["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen


def test_queue_mixes_flags_and_the_audit_sample_in_the_order_its_keys_define(
        make_app: Callable[..., FastAPI], api_keys: dict[Role, str], session: Session) -> None:
    share = 0.2
    with TestClient(make_app(audit_sample_share=share), headers=bearer(api_keys[Role.ADMIN])) as client:
        flags = [flagged_report(client, title=title)["id"] for title in (
            "Helsesykepleier fikk ikke beskjed om ny elev", "Barnevernet svarte ikke barnehagen",
            "Ingen fra NAV møtte i ansvarsgruppen for ungdom", "Epikrise om tvillinger kom ikke til helsestasjonen")]
        batch = [report(f"MIX-{n}", **NEGATIVE) for n in range(40)]
        assert client.post("/api/v1/reports/batch", json={"reports": batch}).json()["counts"] == {"created": 40}
        sampled = [i["report"]["id"] for i in client.get("/api/v1/review-queue", params={"limit": 500}).json()["items"]
                   if i["audit_sample"]]
        assert sampled, "a fifth of 40 reports is drawn for the audit sample"
        for report_id in (flags[0], sampled[0]):
            assert client.post(f"/api/v1/reports/{report_id}/review", json={"decision": "not_case"}).status_code == 201
        rows = session.execute(select(ReportScore.report_id, ReportScore.flagged, ReportScore.score,
                                      ReportScore.threshold, Report.audit_draw, Report.category_code)
                               .join(Report, Report.id == ReportScore.report_id)).all()
        decided = set(session.scalars(select(Review.report_id)))
        waiting = [r for r in rows if r.report_id not in decided and (r.flagged or (
            r.audit_draw < share and r.category_code != "samhandling_barn_unge"))]

        def by_score(r: Any) -> tuple[float, int]:
            key = r.score if r.flagged else r.threshold + (1 - r.threshold) * (r.audit_draw / share)
            return -key, r.report_id

        def by_uncertainty(r: Any) -> tuple[float, int]:
            key = abs(r.score - r.threshold) if r.flagged else (1 - r.threshold) * (r.audit_draw / share)
            return key, r.report_id

        assert queue_ids(client, "score", 2) == [r.report_id for r in sorted(waiting, key=by_score)]
        assert queue_ids(client, "uncertain", 2) == [r.report_id for r in sorted(waiting, key=by_uncertainty)]
        assert flags[0] not in queue_ids(client, "score", 100) and sampled[0] not in queue_ids(client, "score", 100)


def test_a_score_row_knows_whether_a_review_decided_its_report(client: TestClient, session: Session) -> None:
    report_id = flagged_report(client)["id"]

    def reviewed() -> bool:
        session.expire_all()
        return bool(session.scalar(select(ReportScore.reviewed).where(ReportScore.report_id == report_id)))

    assert not reviewed()
    client.post(f"/api/v1/reports/{report_id}/review", json={"decision": "is_case"})
    client.post(f"/api/v1/reports/{report_id}/review", json={"decision": "not_case"})
    assert reviewed()
    # Rescoring deletes the score row and writes a new one: it keeps the mark.
    score = session.scalars(select(ReportScore).where(ReportScore.report_id == report_id)).one()
    values = {c.key: getattr(score, c.key) for c in ReportScore.__table__.columns if c.key != "reviewed"}
    session.execute(delete(ReportScore).where(ReportScore.report_id == report_id))
    session.execute(insert(ReportScore), [values])
    assert reviewed()
    first, second = session.scalars(select(Review).where(Review.report_id == report_id).order_by(Review.id))
    session.delete(second)
    session.flush()
    assert reviewed()
    session.delete(first)
    session.flush()
    assert not reviewed()
    assert report_id in {i["report"]["id"] for i in client.get("/api/v1/review-queue",
                                                                params={"limit": 500}).json()["items"]}
