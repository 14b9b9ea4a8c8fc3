"""The audit log: who saw which reports, written in the same transaction, never free text, append-only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection, event, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from app.auth.principal import Role
from tests.conftest import bearer
from tests.helpers import report

SECRET_TEXT = "Mor fortalte om rusmisbruk hjemme"


def events(session: Session) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def test_reading_a_report_writes_who_when_what(client: TestClient, session: Session) -> None:
    stored = client.post("/api/v1/reports", json=report(description=SECRET_TEXT)).json()
    answer = client.get(f"/api/v1/reports/{stored['id']}", headers={"X-Request-ID": "req-123"})
    assert answer.status_code == 200
    assert answer.headers["x-request-id"] == "req-123"
    last = events(session)[-1]
    assert (last.action, last.actor, last.roles, last.report_ids, last.request_id, last.endpoint) == \
        ("report.read", "key:test-admin", "admin", [stored["id"]], "req-123", "/api/v1/reports/{report_id}")


def test_a_list_page_logs_its_ids_and_filter_with_the_search_masked(client: TestClient, session: Session) -> None:
    ids = [client.post("/api/v1/reports", json=report(description=SECRET_TEXT)).json()["id"] for _ in range(3)]
    page = client.get("/api/v1/reports", params={"q": "rusmisbruk", "children_and_youth": "true"}).json()
    assert {i["id"] for i in page["items"]} >= set(ids)
    last = events(session)[-1]
    assert last.action == "report.list"
    assert set(ids) <= set(last.report_ids)
    assert last.query is not None
    assert last.query["q"] == "[masked]" and last.query["children_and_youth"] is True


def test_the_audit_table_never_holds_free_text(client: TestClient, session: Session) -> None:
    stored = client.post("/api/v1/reports", json=report(title="Tittel med navn", description=SECRET_TEXT)).json()
    client.get(f"/api/v1/reports/{stored['id']}")
    client.get("/api/v1/reports", params={"q": "rusmisbruk"})
    dump = " ".join(str(row) for row in session.execute(text("SELECT * FROM audit_event")).all())
    assert "rusmisbruk" not in dump and "Tittel med navn" not in dump


def test_if_the_audit_row_cannot_be_written_no_free_text_is_sent(
    make_app: Callable[..., FastAPI], api_keys: dict[Role, str], connection: Connection, client: TestClient
) -> None:
    stored = client.post("/api/v1/reports", json=report(description=SECRET_TEXT)).json()

    def refuse_audit(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO AUDIT_EVENT"):
            raise DBAPIError(statement, None, Exception("audit storage full"))

    event.listen(connection, "before_cursor_execute", refuse_audit)
    try:
        with TestClient(make_app(), raise_server_exceptions=False, headers=bearer(api_keys[Role.ADVISER])) as a:
            answer = a.get(f"/api/v1/reports/{stored['id']}")
    finally:
        event.remove(connection, "before_cursor_execute", refuse_audit)
    assert answer.status_code == 503
    assert SECRET_TEXT not in answer.text


def test_audit_rows_cannot_be_changed_or_deleted(client: TestClient, connection: Connection) -> None:
    client.get("/api/v1/reports")
    for statement in ("UPDATE audit_event SET actor = 'someone else'", "DELETE FROM audit_event"):
        savepoint = connection.begin_nested()
        with pytest.raises(DBAPIError, match="append-only"):
            connection.execute(text(statement))
        savepoint.rollback()


def test_admins_filter_and_export_the_audit_log(client: TestClient, api_keys: dict[Role, str],
                                                make_app: Callable[..., FastAPI]) -> None:
    stored = client.post("/api/v1/reports", json=report()).json()
    with TestClient(make_app(), headers=bearer(api_keys[Role.ADVISER])) as adviser:
        adviser.get(f"/api/v1/reports/{stored['id']}")
    page = client.get("/api/v1/audit", params={"report_id": stored["id"], "action": "report.read"}).json()
    assert [(e["actor"], e["report_ids"]) for e in page["items"]] == [("key:test-adviser", [stored["id"]])]
    assert client.get("/api/v1/audit", params={"actor": "key:test-adviser"}).json()["items"]
    assert client.get("/api/v1/audit", params={"from": "2000-01-01", "to": "2000-01-02"}).json()["items"] == []
    exported = client.get("/api/v1/audit", params={"format": "csv", "actor": "key:test-adviser"})
    assert exported.headers["content-type"].startswith("text/csv")
    assert exported.content.startswith("\ufeff".encode())
    lines = exported.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("id;at;actor;") and "key:test-adviser" in lines[1]


def test_the_audit_log_pages_newest_first(client: TestClient) -> None:
    for _ in range(5):
        client.get("/api/v1/reports")
    first = client.get("/api/v1/audit", params={"limit": 2}).json()
    second = client.get("/api/v1/audit", params={"limit": 2, "before_id": first["next_before_id"]}).json()
    ids = [e["id"] for e in first["items"] + second["items"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 4


def test_nothing_in_the_logs_contains_free_text(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    stored = client.post("/api/v1/reports", json=report(description=SECRET_TEXT)).json()
    client.get(f"/api/v1/reports/{stored['id']}")
    client.post("/api/v1/reports", json={**report(description=SECRET_TEXT), "source_version": "not a version"})
    assert "rusmisbruk" not in caplog.text


FNR = "01042381248"  # what an outside probe put in a filter: a plausible date, so an identity number


def test_filter_values_are_redacted_in_the_audit_row(client: TestClient, session: Session) -> None:
    client.get("/api/v1/reports", params={"unit": f"Garnes skole {FNR}", "status": [f"x{FNR}", "registrert"]})
    client.get("/api/v1/reports", params={"format": "csv", "unit": f"Garnes skole {FNR[:6]}\u00a0{FNR[6:]}"})
    client.get("/api/v1/review-queue", params={"unit": f"tlf 412-34-578 {FNR}"})
    rows = events(session)[-3:]
    assert rows[0].query is not None and rows[0].query["unit"] == "Garnes skole [fødselsnummer]"
    assert rows[0].query["status"] == ["x[fødselsnummer]", "registrert"]
    dump = " ".join(str(row) for row in session.execute(text("SELECT * FROM audit_event")).all())
    assert FNR not in dump and FNR[6:] not in dump and "412-34-578" not in dump


def test_error_answers_echo_no_identity_number(client: TestClient) -> None:
    answers = [
        client.get("/api/v1/reports", params={"target_group": FNR}),
        client.get("/api/v1/reports", params={"category": FNR, "department": FNR, "agency": FNR}),
        client.get(f"/api/v1/reports/by-external/bkkvalitet/{FNR}"),
        client.get(f"/api/v1/reports/by-external/{FNR}/BK-1"),
        client.post("/api/v1/reports", json=report(target_groups=[FNR], services_involved=[f"a {FNR}"])),
        client.get("/api/v1/stats/counts", params={"by": "service", "service": FNR}),
        client.post("/api/v1/taxonomy/target_group/" + FNR + "/retire", json={}),
    ]
    assert [a.status_code for a in answers] == [422, 422, 404, 404, 422, 422, 404]
    for answer in answers:
        assert FNR not in answer.text and FNR[6:] not in answer.text, answer.text
    assert "unknown target_group '[fødselsnummer]'" in answers[0].text
    assert answers[2].json()["message"] == "no report [fødselsnummer] from bkkvalitet"


def test_a_repeated_review_is_audited_as_a_read(client: TestClient, session: Session) -> None:
    stored = client.post("/api/v1/reports", json=report()).json()
    body = {"decision": "confirm", "comment": "Sett, gjelder samhandling"}
    first = client.post(f"/api/v1/reports/{stored['id']}/review", json=body)
    again = client.post(f"/api/v1/reports/{stored['id']}/review", json=body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["comment"] == body["comment"]
    rows = events(session)[-2:]
    assert [(r.action, r.report_ids, r.actor) for r in rows] == [
        ("report.review", [stored["id"]], "key:test-admin"),
        ("report.review.repeated", [stored["id"]], "key:test-admin")]
