"""Ingest through the real app and database: idempotency, versions, mapping, validation, limits."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.auth.principal import Role
from app.report.models import Report, ReportService, ReportTargetGroup
from tests.conftest import bearer
from tests.helpers import delivered, report

URL = "/api/v1/reports"


def count(session: Session, external_id: str) -> int:
    return session.scalar(select(func.count()).select_from(Report).where(Report.external_id == external_id)) or 0


def test_replayed_delivery_is_stored_once(client: TestClient, session: Session) -> None:
    body = report()
    first = client.post(URL, json=body)
    replay = client.post(URL, json=body)
    assert (first.status_code, replay.status_code) == (201, 200)
    assert (first.json()["outcome"], replay.json()["outcome"]) == ("created", "unchanged")
    assert first.json()["id"] == replay.json()["id"]
    assert count(session, body["external_id"]) == 1


def test_newer_version_updates_and_replaces_codes(client: TestClient, session: Session) -> None:
    body = report()
    created = client.post(URL, json=body).json()
    stored = delivered(client, {**body, "source_version": 2, "status": "lukket", "title": "Ny tittel",
                                "target_groups": ["ungdom_13_17"], "services_involved": ["bup"]})
    assert (stored["outcome"], stored["id"], stored["status"], stored["title"]) == \
        ("updated", created["id"], "lukket", "Ny tittel")
    assert (stored["target_groups"], stored["services_involved"]) == (["ungdom_13_17"], ["bup"])
    groups = session.scalars(select(ReportTargetGroup.code).where(ReportTargetGroup.report_id == created["id"]))
    services = session.scalars(select(ReportService.code).where(ReportService.report_id == created["id"]))
    assert (list(groups), list(services)) == (["ungdom_13_17"], ["bup"])


def test_older_version_is_acknowledged_as_stale_and_not_applied(client: TestClient) -> None:
    body = report(source_version=5, status="tiltak")
    client.post(URL, json=body)
    stale = client.post(URL, json={**body, "source_version": 4, "status": "registrert"})
    assert stale.status_code == 200
    assert (stale.json()["outcome"], stale.json()["source_version"], stale.json()["stored_version"]) == \
        ("stale", "4", "5")
    stored = client.get(f"{URL}/{stale.json()['id']}").json()
    assert (stored["status"], stored["source_version"]) == ("tiltak", "5")


def test_timestamp_versions_order_by_time_not_text(client: TestClient) -> None:
    body = report(source_version="2026-03-03T10:00:00+01:00")
    client.post(URL, json=body)
    # 09:30 UTC is later than 10:00+01:00 (09:00 UTC) although it sorts earlier as text.
    later = client.post(URL, json={**body, "source_version": "2026-03-03T09:30:00Z", "status": "lukket"})
    earlier = client.post(URL, json={**body, "source_version": "2026-03-03T08:59:59Z", "status": "tiltak"})
    assert (later.json()["outcome"], earlier.json()["outcome"]) == ("updated", "stale")
    assert earlier.json()["stored_version"] == "2026-03-03T09:30:00+00:00"
    assert client.get(f"{URL}/{earlier.json()['id']}").json()["status"] == "lukket"


def test_same_version_with_other_content_is_a_conflict_not_a_silent_drop(client: TestClient) -> None:
    body = report()
    client.post(URL, json=body)
    answer = client.post(URL, json={**body, "description": "endret uten ny versjon"})
    assert answer.status_code == 409
    assert answer.json()["fields"][0]["field"] == "source_version"


def test_unknown_category_is_kept_as_sent_and_marked_unmapped(client: TestClient) -> None:
    stored = delivered(client, report(reported_category="Helt ny kategori 2027"))
    assert (stored["reported_category"], stored["category"], stored["category_mapped"]) == \
        ("Helt ny kategori 2027", None, False)


def test_category_labels_map_ignoring_case_spacing_and_og_variants(client: TestClient) -> None:
    cases = {
        "kommunikasjon  &  SAMHANDLING": "kommunikasjon_og_samhandling",
        "Samhandling barn & unge": "samhandling_barn_unge",
        "samhandling_barn_unge": "samhandling_barn_unge",
        "Mangler ved kommunikasjon / informasjon": "mangler_kommunikasjon_informasjon",
        "Elektronisk samhandling ( med eksterne )": "elektronisk_samhandling_eksterne",
        "Kommunikasjon og samhandling - Annet": "kommunikasjon_annet",
        "Annet": "annet",
        "relasjon/samarbeid": "relasjon_samarbeid",
    }
    for label, code in cases.items():
        stored = delivered(client, report(reported_category=label))
        assert stored["category"] == code, label


def test_unknown_codes_are_refused_naming_the_value_and_the_valid_ones(client: TestClient, session: Session) -> None:
    body = report(target_groups=["barn_6_12", "tenaringer"], services_involved=["skole", "brannvesenet"])
    answer = client.post(URL, json=body)
    assert answer.status_code == 422
    fields = {f["field"]: f["reason"] for f in answer.json()["fields"]}
    assert set(fields) == {"target_groups[1]", "services_involved[1]"}
    assert "tenaringer" in fields["target_groups[1]"] and "ungdom_13_17" in fields["target_groups[1]"]
    assert "brannvesenet" in fields["services_involved[1]"] and "barnevern" in fields["services_involved[1]"]
    assert count(session, body["external_id"]) == 0


def test_bad_fields_are_named_with_the_reason(client: TestClient) -> None:
    answer = client.post(URL, json=report(title="  ", reported_at="i går", source_version=-1))
    assert answer.status_code == 422
    assert {f["field"] for f in answer.json()["fields"]} == {"title", "reported_at", "source_version"}


def test_client_cannot_set_fields_that_are_not_in_the_payload(client: TestClient) -> None:
    answer = client.post(URL, json=report(id=5, category="samhandling_barn_unge"))
    assert answer.status_code == 422
    assert {f["field"] for f in answer.json()["fields"]} == {"id", "category"}


def test_description_over_20000_characters_is_refused(client: TestClient) -> None:
    answer = client.post(URL, json=report(description="x" * 20_001))
    assert answer.status_code == 422
    assert answer.json()["fields"][0]["field"] == "description"
    assert client.post(URL, json=report(description="x" * 20_000)).status_code == 201


def test_body_over_the_limit_is_413_by_header_and_when_streamed(make_app, api_keys) -> None:  # type: ignore[no-untyped-def]
    app = make_app(max_body_bytes=4096)
    with TestClient(app, raise_server_exceptions=False, headers=bearer(api_keys[Role.INTEGRATION])) as small:
        big = json.dumps(report(description="y" * 10_000)).encode()
        declared = small.post(URL, content=big, headers={"content-type": "application/json"})
        assert declared.status_code == 413

        def chunks():  # type: ignore[no-untyped-def]
            yield big[:2000]
            yield big[2000:]

        streamed = small.post(URL, content=chunks(), headers={"content-type": "application/json"})
        assert streamed.status_code == 413
        assert streamed.json()["error"] == "payload_too_large"


def test_naive_times_are_oslo_time(client: TestClient) -> None:
    body = report(reported_at="2026-07-01T12:00:00", occurred_at="2026-01-15T12:00:00")
    stored = delivered(client, body)
    assert stored["reported_at"] == "2026-07-01T10:00:00Z"  # summer time, UTC+2
    assert stored["occurred_at"] == "2026-01-15T11:00:00Z"  # winter time, UTC+1


def test_reporting_unit_as_text_or_codes(client: TestClient) -> None:
    as_text = delivered(client, report(reporting_unit="Etat for barn og familie – Helsestasjon Åsane"))
    assert as_text["reporting_unit"] == {"department": "BBSM", "agency": "barn_og_familie",
                                         "unit": "Helsestasjon Åsane", "unit_code": None,
                                         "as_sent": "Etat for barn og familie – Helsestasjon Åsane"}
    unit = {"department": "BBS", "agency": "barnehage", "unit": "Hjellestad barnehage", "unit_code": "4401"}
    as_codes = delivered(client, report(reporting_unit=unit))
    assert as_codes["reporting_unit"]["department"] == "BBS"
    assert as_codes["reporting_unit"]["unit_code"] == "4401"
    unknown = delivered(client, report(reporting_unit={"agency": "Etat for noe nytt", "unit": "Enhet X"}))
    assert unknown["reporting_unit"]["agency"] is None
    assert unknown["reporting_unit"]["as_sent"] == "Etat for noe nytt – Enhet X"


def test_batch_applies_valid_items_and_reports_each_invalid_one(client: TestClient, session: Session) -> None:
    existing = report()
    client.post(URL, json=existing)
    items = [
        report("NEW-1"),
        {"title": "mangler nummer"},
        report("NEW-2", services_involved=["ukjent_tjeneste"]),
        existing,
        {**existing, "source_version": 0},
        {**existing, "source_version": 3, "status": "lukket"},
        report("NEW-1", source_version=2, status="tiltak"),
        "not an object",
    ]
    answer = client.post(f"{URL}/batch", json={"reports": items})
    assert answer.status_code == 200
    results = answer.json()["results"]
    assert [r["outcome"] for r in results] == \
        ["created", "invalid", "invalid", "unchanged", "stale", "updated", "updated", "invalid"]
    assert results[1]["errors"][0]["field"] == "external_id"
    assert results[2]["errors"][0]["field"] == "services_involved[0]"
    assert results[0]["id"] == results[6]["id"]
    assert answer.json()["counts"] == {"created": 1, "invalid": 3, "unchanged": 1, "stale": 1, "updated": 2}
    assert count(session, "NEW-2") == 0
    new_one = session.scalars(select(Report).where(Report.external_id == "NEW-1")).one()
    assert (new_one.status, new_one.source_version) == ("tiltak", "2")


def test_batch_over_the_item_limit_is_413(make_app, api_keys) -> None:  # type: ignore[no-untyped-def]
    headers = bearer(api_keys[Role.INTEGRATION])
    with TestClient(make_app(max_batch_items=3), raise_server_exceptions=False, headers=headers) as small:
        answer = small.post(f"{URL}/batch", json={"reports": [report() for _ in range(4)]})
    assert answer.status_code == 413
    assert answer.json()["fields"][0]["field"] == "reports"


def test_batch_of_1000_is_accepted(client: TestClient, session: Session) -> None:
    answer = client.post(f"{URL}/batch", json={"reports": [report(f"MANY-{i}") for i in range(1000)]})
    assert answer.status_code == 200
    assert answer.json()["counts"] == {"created": 1000}
    assert session.scalar(select(func.count()).select_from(Report).where(Report.external_id.like("MANY-%"))) == 1000


def test_retired_code_is_refused_on_new_reports_but_stays_on_old_ones(client: TestClient) -> None:
    old = report(target_groups=["barn_1_5"])
    client.post(URL, json=old)
    client.post("/api/v1/taxonomy/target_group", json={"code": "smabarn", "label": "Småbarn"})
    retire = client.post("/api/v1/taxonomy/target_group/barn_1_5/retire", json={"replaced_by": "smabarn"})
    assert retire.status_code == 200

    refused = client.post(URL, json=report(target_groups=["barn_1_5"]))
    assert refused.status_code == 422
    assert "retired" in refused.json()["fields"][0]["reason"] and "smabarn" in refused.json()["fields"][0]["reason"]

    kept = delivered(client, {**old, "source_version": 2, "status": "lukket"})
    assert (kept["outcome"], kept["target_groups"]) == ("updated", ["barn_1_5"])


def test_status_is_stored_in_lower_case_whatever_case_it_comes_in(client: TestClient) -> None:
    stored = delivered(client, report(status=" Under_Behandling "))
    assert (stored["outcome"], stored["status"]) == ("created", "under_behandling")
    refused = client.post(URL, json=report(status="under behandling"))
    assert refused.status_code == 422 and refused.json()["fields"][0]["field"] == "status"


ANSWER_KEYS = {"outcome", "id", "source_system", "external_id", "source_version", "stored_version"}


def test_an_integration_key_cannot_read_a_stored_report_through_ingest(
    client: TestClient, make_app, api_keys  # type: ignore[no-untyped-def]
) -> None:
    secret = "Mor fortalte om rusmisbruk hjemme"
    body = report(title="Tittel om Ola", description=secret, source_version=5)
    created = client.post(URL, json=body)
    with TestClient(make_app(), raise_server_exceptions=False, headers=bearer(api_keys[Role.INTEGRATION])) as bk:
        answers = [
            bk.post(URL, json={**body, "source_version": 0, "title": "x", "description": ""}),  # stale
            bk.post(URL, json=body),  # unchanged
            bk.post(URL, json={**body, "title": "x"}),  # conflict
        ]
        batch = bk.post(f"{URL}/batch", json={"reports": [{**body, "source_version": 0, "title": "x"}, body,
                                                          {**body, "title": "x"}, {**body, "status": "?"}]})
    assert [a.status_code for a in answers] == [200, 200, 409]
    for answer in [created, *answers[:2]]:
        assert set(answer.json()) == ANSWER_KEYS
    assert answers[0].json() == {"outcome": "stale", "id": created.json()["id"], "source_system": "bkkvalitet",
                                 "external_id": body["external_id"], "source_version": "0", "stored_version": "5"}
    assert [r["outcome"] for r in batch.json()["results"]] == ["stale", "unchanged", "conflict", "invalid"]
    for result in batch.json()["results"]:
        assert set(result) <= {"index", "errors", *ANSWER_KEYS}
    for text in (secret, "Tittel om Ola", "Kommunikasjon og samhandling", "barn_6_12", "Garnes skole"):
        assert all(text not in a.text for a in [created, *answers, batch]), text


def test_extreme_version_timestamps_are_422_naming_the_field_single_and_in_a_batch(
    client: TestClient, session: Session
) -> None:
    for extreme in ("9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"):
        for field in ("source_version", "occurred_at", "reported_at"):
            answer = client.post(URL, json=report(**{field: extreme}))
            assert answer.status_code == 422, (field, extreme, answer.text)
            assert [f["field"] for f in answer.json()["fields"]] == [field]
        good = report()
        batch = client.post(f"{URL}/batch", json={"reports": [good, report(source_version=extreme)]})
        assert batch.status_code == 200, batch.text
        results = batch.json()["results"]
        assert [r["outcome"] for r in results] == ["created", "invalid"]
        assert results[1]["errors"][0]["field"] == "source_version"
        assert count(session, good["external_id"]) == 1


def test_a_lone_surrogate_is_invalid_not_a_500(client: TestClient, session: Session) -> None:
    good = report()
    raw = json.dumps({"reports": [good, report(external_id="\ud800"), report(title="a\udfffb")]}).encode()
    assert b"\\ud800" in raw  # sent as JSON sends it: an escaped lone surrogate
    answer = client.post(f"{URL}/batch", content=raw, headers={"content-type": "application/json"})
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r["outcome"] for r in results] == ["created", "invalid", "invalid"]
    assert (results[1]["errors"][0]["field"], results[2]["errors"][0]["field"]) == ("external_id", "title")
    assert count(session, good["external_id"]) == 1
    single = client.post(URL, content=json.dumps(report(external_id="\ud800")).encode(),
                         headers={"content-type": "application/json"})
    assert single.status_code == 422 and single.json()["fields"][0]["field"] == "external_id"


def test_an_item_that_fails_unforeseen_is_invalid_and_the_rest_is_stored(
    client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Fault injection: whatever goes wrong with one item in a way validation did not foresee (here the
    # mapping raises), that item is invalid and the batch's other items are stored.
    from app.ingest import plan

    real = plan.report_values

    def report_values(taxonomy, item, local):  # type: ignore[no-untyped-def]
        if item.title == "BOOM":
            raise OverflowError("date value out of range")
        return real(taxonomy, item, local)

    monkeypatch.setattr(plan, "report_values", report_values)
    good, bad = report(), report(title="BOOM")
    answer = client.post(f"{URL}/batch", json={"reports": [good, bad]})
    assert answer.status_code == 200
    assert [r["outcome"] for r in answer.json()["results"]] == ["created", "invalid"]
    assert answer.json()["results"][1]["errors"] == [{"field": "item",
                                                      "reason": "could not be read; nothing of it was stored"}]
    assert (count(session, good["external_id"]), count(session, bad["external_id"])) == (1, 0)
    single = client.post(URL, json=report(title="BOOM"))
    assert single.status_code == 422 and single.json()["fields"][0]["field"] == "item"


def test_a_version_of_the_other_kind_is_a_conflict_naming_both_kinds(client: TestClient) -> None:
    by_time = report(source_version="2026-03-03T10:00:00+01:00")
    client.post(URL, json=by_time)
    answer = client.post(URL, json={**by_time, "source_version": 5, "status": "lukket"})
    assert answer.status_code == 409
    (field,) = answer.json()["fields"]
    assert field["field"] == "source_version"
    assert "number" in field["reason"] and "timestamp" in field["reason"]
    by_number = report(source_version=3)
    client.post(URL, json=by_number)
    batch = client.post(f"{URL}/batch", json={"reports": [{**by_number, "source_version": "2026-03-03T10:00:00Z"}]})
    assert batch.json()["results"][0]["outcome"] == "conflict"
    stored = client.get(f"{URL}/by-external/bkkvalitet/{by_time['external_id']}").json()
    assert (stored["status"], stored["source_version"]) == ("registrert", "2026-03-03T09:00:00+00:00")


def test_a_case_number_holding_an_identity_number_is_refused_naming_the_field(client: TestClient,
                                                                              session: Session) -> None:
    for field, value, name in (("external_id", "15031212345", "external_id"),
                               ("external_id", "BK 150312 12345", "external_id"),
                               ("related_external_ids", ["BK-1", "ola@bergen.kommune.no"], "related_external_ids[1]"),
                               ("source_system", "bk-150312.12345", "source_system")):
        answer = client.post(URL, json=report(**{field: value}))
        assert answer.status_code == 422
        assert [f["field"] for f in answer.json()["fields"]] == [name]
        assert "150312" not in answer.text and "ola@" not in answer.text
    batch = client.post(f"{URL}/batch", json={"reports": [report(external_id="150312-12345")]}).json()
    assert batch["results"][0]["outcome"] == "invalid"
    assert batch["results"][0]["external_id"] == "[fødselsnummer]"  # echoed without the number
    # Case numbers as the quality system writes them are kept.
    assert client.post(URL, json=report(external_id="BK-2026-01234")).status_code == 201
