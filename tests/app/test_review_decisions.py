"""What a decision means, on every kind of report, and one version check against overwriting a colleague's."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import String, literal, select, text
from sqlalchemy.orm import Session

from app.auth.keys import create_key
from app.auth.principal import Role
from app.migrate import downgrade, upgrade
from app.review.labels import TARGET_CATEGORY
from app.review.models import Decision
from tests.app.test_migrations import database_at
from tests.app.test_review import POSITIVE
from tests.conftest import DatabaseFactory, bearer
from tests.helpers import delivered, report

# (decision body, whether it makes the report a case): every kind of decision the API accepts (is_case and
# not_case under their older names, which stay accepted).
DECISIONS: list[tuple[dict[str, Any], bool]] = [
    ({"decision": "confirm"}, True),
    ({"decision": "reject"}, False),
    ({"decision": "correct", "target_groups": ["ungdom_13_17"]}, True),  # the labels were wrong, not the flag
    ({"decision": "correct", "category": TARGET_CATEGORY, "services": ["bup"]}, True),
    ({"decision": "correct", "category": "informasjonsplikt"}, False),
]
PLAYGROUND = {
    "title": "Gutt falt fra klatrestativet i barnehagen",
    "description": "En gutt på 4 år falt fra klatrestativet på uteområdet og slo hodet. Foreldrene ble varslet "
                   "og hentet ham. Ingen andre tjenester var involvert.",
    "reported_category": "Pasient-/brukerskade",
    "reporting_unit": {"agency": "Etat for barnehage", "unit": "Solsikken barnehage"},
    "target_groups": [],
    "services_involved": [],
}


@pytest.fixture
def no_sample(make_app: Callable[..., FastAPI], api_keys: dict[Role, str]) -> Iterator[TestClient]:
    """A client of an app without an audit sample, so that an unflagged report is neither flag nor draw."""
    with TestClient(make_app(audit_sample_share=0.0), headers=bearer(api_keys[Role.ADMIN])) as client:
        yield client


def flagged(client: TestClient, n: int) -> list[dict[str, Any]]:
    stored = [delivered(client, report(title=f"{POSITIVE['title']} {i}",
                                       **{k: v for k, v in POSITIVE.items() if k != "title"})) for i in range(n)]
    assert all(s["outcome"] == "created" and s["flagged"] for s in stored), stored
    return stored


def test_the_rule_in_python_and_in_sql_agree(session: Session) -> None:
    from app.review.labels import is_case, is_case_clause

    for decision in Decision:
        for category in (None, TARGET_CATEGORY, "informasjonsplikt"):
            in_sql = session.scalar(select(is_case_clause(literal(decision.value, String), literal(category, String))))
            assert bool(in_sql) is is_case(decision, category), (decision, category)


def test_labels_live_quality_and_estimate_count_the_same_cases(no_sample: TestClient) -> None:
    # The case: a correction without a category was a case in the labels but a miss in live precision
    # and in the estimate's rates.
    client = no_sample
    reports = flagged(client, len(DECISIONS))
    for stored, (body, _) in zip(reports, DECISIONS, strict=True):
        answer = client.post(f"/api/v1/reports/{stored['id']}/review", json=body)
        assert answer.status_code == 201, answer.text
    cases = sum(case for _, case in DECISIONS)

    in_labels = [client.get(f"/api/v1/reports/{r['id']}").json()["confirmed_category"] == TARGET_CATEGORY
                 for r in reports]
    assert in_labels == [case for _, case in DECISIONS]

    quality = client.get("/api/v1/models/active/quality").json()["overall"]
    assert (quality["reviewed_flags"], quality["confirmed_flags"]) == (len(DECISIONS), cases)
    assert quality["precision"] == pytest.approx(cases / len(DECISIONS))

    strata = client.get("/api/v1/stats/estimate").json()["strata"]
    flags = [s for s in strata if s["name"].startswith("flag_")]
    assert sum(s["reviewed"] for s in flags) == len(DECISIONS)
    assert sum(s["confirmed_in_review"] for s in flags) == cases


def test_a_case_made_of_a_report_neither_flagged_nor_drawn_adopts_no_guesses(no_sample: TestClient) -> None:
    client = no_sample
    fall = delivered(client, report(**PLAYGROUND))
    assert fall["flagged"] is False
    guessed = set(fall["classification"]["target_groups"]) | set(fall["classification"]["services"])
    assert guessed, "the classifier suggests codes for this report, so the test can see whether they are adopted"

    answer = client.post(f"/api/v1/reports/{fall['id']}/review", json={"decision": "confirm"})
    assert answer.status_code == 201, answer.text
    detail = client.get(f"/api/v1/reports/{fall['id']}").json()
    assert detail["confirmed_category"] == TARGET_CATEGORY
    assert detail["labels"] == [] and detail["target_groups"] == [] and detail["services_involved"] == []
    assert answer.json()["audit_sample"] is False and answer.json()["flagged"] is False
    assert "not adopted" in answer.json()["warnings"][0]

    chosen = client.post(f"/api/v1/reports/{fall['id']}/review", json={
        "decision": "is_case", "target_groups": ["barn_1_5"], "services": ["barnehage", "helsestasjon"]})
    assert chosen.status_code == 201 and chosen.json()["warnings"] == []
    detail = client.get(f"/api/v1/reports/{fall['id']}").json()
    assert (detail["target_groups"], detail["services_involved"]) == (["barn_1_5"], ["barnehage", "helsestasjon"])

    # A flag made a case takes the classifier's suggestion where nobody named codes, as before.
    (flag,) = flagged(client, 1)
    assert client.post(f"/api/v1/reports/{flag['id']}/review", json={"decision": "is_case"}).json()["warnings"] == []
    detail = client.get(f"/api/v1/reports/{flag['id']}").json()
    assert set(detail["target_groups"]) == set(flag["classification"]["target_groups"]) != set()


def test_an_audit_sample_draw_made_a_case_adopts_the_suggestion(make_app: Callable[..., FastAPI],
                                                                api_keys: dict[Role, str]) -> None:
    with TestClient(make_app(audit_sample_share=1.0), headers=bearer(api_keys[Role.ADMIN])) as client:
        fall = delivered(client, report(**PLAYGROUND))
        answer = client.post(f"/api/v1/reports/{fall['id']}/review", json={"decision": "is_case"}).json()
        assert (answer["audit_sample"], answer["warnings"]) == (True, [])
        detail = client.get(f"/api/v1/reports/{fall['id']}").json()
        assert set(detail["target_groups"]) == set(fall["classification"]["target_groups"])


def test_flagged_and_codes_mean_one_thing_before_and_after_a_decision(no_sample: TestClient) -> None:
    client = no_sample
    (stored,) = flagged(client, 1)
    assert (stored["flagged"], stored["target_groups"], stored["services_involved"]) == (True, [], [])
    assert {lab["provenance"] for lab in stored["labels"]} == {"classifier"}  # suggestions, not official

    answer = client.post(f"/api/v1/reports/{stored['id']}/review", json={
        "decision": "correct", "target_groups": ["ungdom_13_17"], "services": ["skole", "skolehelsetjeneste"]})
    assert answer.status_code == 201, answer.text
    detail = client.get(f"/api/v1/reports/{stored['id']}").json()
    assert detail["flagged"] is False and detail["classification"]["flagged"] is True
    assert (detail["target_groups"], detail["services_involved"]) == (["ungdom_13_17"],
                                                                      ["skole", "skolehelsetjeneste"])
    listed = client.get("/api/v1/reports", params={"target_group": "ungdom_13_17", "limit": 500}).json()["items"]
    assert [(i["id"], i["flagged"]) for i in listed if i["id"] == stored["id"]] == [(stored["id"], False)]
    export = client.get("/api/v1/reports", params={"format": "csv", "target_group": "ungdom_13_17"})
    rows = list(csv.DictReader(io.StringIO(export.content.decode("utf-8-sig")), delimiter=";"))
    assert [(r["flagged"], r["target_groups"]) for r in rows if r["id"] == str(stored["id"])] == [
        ("false", "ungdom_13_17")]
    updated = delivered(client, report(stored["external_id"], **{
        **{k: v for k, v in POSITIVE.items() if k != "title"}, "title": stored["title"], "source_version": 2}))
    assert (updated["outcome"], updated["flagged"], updated["target_groups"]) == ("updated", False, ["ungdom_13_17"])


def test_a_stale_if_match_is_412_naming_who_decided_and_writes_nothing(
        client: TestClient, make_app: Callable[..., FastAPI], session: Session) -> None:
    (stored,) = flagged(client, 1)
    url = f"/api/v1/reports/{stored['id']}"
    seen = client.get(url).headers["ETag"]
    assert seen == '"review-0"'

    _, key = create_key(session, "colleague", Role.ADVISER, None)
    with TestClient(make_app(), headers=bearer(key)) as colleague:
        first = colleague.post(f"{url}/review", json={"decision": "not_case"}, headers={"If-Match": seen})
        assert first.status_code == 201, first.text
        assert first.headers["ETag"] == client.get(url).headers["ETag"] != seen

    late = client.post(f"{url}/review", json={"decision": "is_case", "comment": "Ja"}, headers={"If-Match": seen})
    assert late.status_code == 412
    assert late.json()["error"] == "precondition_failed"
    assert "key:colleague" in late.json()["message"] and "not_case" in late.json()["message"]
    assert late.json()["fields"][0]["field"] == "If-Match"
    assert late.headers["ETag"] == first.headers["ETag"]
    history = client.get(f"{url}/history").json()["reviews"]
    assert [r["decision"] for r in history] == ["not_case"]

    current = client.get(url).headers["ETag"]
    again = client.post(f"{url}/review", json={"decision": "is_case"}, headers={"If-Match": current})
    assert again.status_code == 201
    # The same decision sent again with the version it was made on is a replay, not a conflict.
    replay = client.post(f"{url}/review", json={"decision": "is_case"}, headers={"If-Match": current})
    assert (replay.status_code, replay.json()["id"]) == (200, again.json()["id"])
    # Without If-Match (or with *) a decision supersedes whatever is there, as before.
    assert client.post(f"{url}/review", json={"decision": "not_case"}).status_code == 201
    assert client.post(f"{url}/review", json={"decision": "is_case"}, headers={"If-Match": "*"}).status_code == 201
    weak = client.post(f"{url}/review", json={"decision": "not_case"},
                       headers={"If-Match": "W/" + client.get(url).headers["ETag"]})
    assert weak.status_code == 412  # If-Match compares strongly


def test_concurrent_decisions_on_one_version_write_one(committing_app: FastAPI) -> None:
    source = committing_app.state.test_source_system

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=committing_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test",
                                     headers=committing_app.state.test_headers) as http:
            body = report(source_system=source, **POSITIVE)
            stored = (await http.post("/api/v1/reports", json=body)).json()
            tag = (await http.get(f"/api/v1/reports/{stored['id']}")).headers["ETag"]
            return await asyncio.gather(*(
                http.post(f"/api/v1/reports/{stored['id']}/review", headers={"If-Match": tag},
                          json={"decision": "is_case" if n % 2 else "not_case", "comment": f"{n}"})
                for n in range(8)))

    answers = asyncio.run(run())
    assert sorted(a.status_code for a in answers) == [201] + [412] * 7


def test_stored_decisions_are_renamed_and_the_estimate_basis_follows(databases: DatabaseFactory) -> None:
    with database_at(databases, "0009") as (url, engine):
        with engine.begin() as connection:
            for report_id in (21, 22, 23):
                connection.execute(text(
                    "INSERT INTO report (id, source_system, external_id, title, description, reported_at, reported_on,"
                    " occurred_sort_at, status, source_version, source_version_key, content_hash, created_at,"
                    " updated_at, redacted_identity_numbers, redacted_phone_numbers, redacted_emails, audit_draw)"
                    " VALUES (:id, 'bkkvalitet', :ext, 't', 'd', '2026-02-01 10:00:00', '2026-02-01',"
                    " '2026-02-01 10:00:00', 'lukket', '1', 1, 'h', '2026-02-01 10:00:00', '2026-02-01 10:00:00',"
                    " 0, 0, 0, 0.5)"), {"id": report_id, "ext": f"R-{report_id}"})
            for report_id, decision in ((21, "confirm"), (22, "reject"), (23, "correct")):
                connection.execute(text(
                    "INSERT INTO review (report_id, decision, reviewer, reviewed_at, flagged, audit_sample)"
                    " VALUES (:id, :decision, 'key:test', '2026-02-02 00:00:00', TRUE, FALSE)"),
                    {"id": report_id, "decision": decision})
        upgrade(url, "0010")
        renamed = [("is_case",) * 2, ("not_case",) * 2, ("correct",) * 2]
        with engine.connect() as connection:
            assert [tuple(r) for r in connection.execute(text(
                "SELECT v.decision, b.review_decision FROM review v JOIN estimate_basis b ON b.report_id = v.report_id"
                " ORDER BY v.report_id"))] == renamed
        downgrade(url, "0009")
        with engine.connect() as connection:
            assert [r[0] for r in connection.execute(text(
                "SELECT review_decision FROM estimate_basis ORDER BY report_id"))] == ["confirm", "reject", "correct"]
