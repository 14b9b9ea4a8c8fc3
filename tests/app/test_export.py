"""Exports of the report list: CSV as Norwegian Excel opens it, XLSX, every matching report, audited."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

from fastapi import FastAPI
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from app.auth.principal import Role
from tests.conftest import bearer
from tests.helpers import report


def seed(client: TestClient, n: int = 5) -> list[int]:
    items = [report(f"EXP-{i}", source_system="export", title=f"Skolen ga ikkje beskjed, æøå {i}")
             for i in range(n)]
    items.append(report("EXP-evil", source_system="export", title="=HYPERLINK(\"http://x\")"))
    return [r["id"] for r in client.post("/api/v1/reports/batch", json={"reports": items}).json()["results"]]


def test_csv_has_bom_semicolons_every_match_and_inert_formulas(client: TestClient, session: Session) -> None:
    ids = seed(client)
    # limit is a page size; an export ignores it and takes every match.
    answer = client.get("/api/v1/reports", params={"format": "csv", "status": "registrert", "limit": 2})
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.content.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(answer.content.decode("utf-8-sig")), delimiter=";"))
    exported = {int(r["id"]): r for r in rows}
    assert set(ids) <= set(exported)  # every match, not one page
    assert exported[ids[0]]["title"] == "Skolen ga ikkje beskjed, æøå 0"
    assert exported[ids[-1]]["title"].startswith("'=")  # a spreadsheet will not run it
    assert "description" not in rows[0]
    event = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert event is not None and event.action == "report.export.csv"
    assert event.query is not None and event.query["status"] == ["registrert"]


def test_accept_header_and_description_column(client: TestClient) -> None:
    seed(client, 2)
    answer = client.get("/api/v1/reports", params={"include_description": True, "q": "ikkje"},
                        headers={"Accept": "text/csv"})
    header = answer.content.decode("utf-8-sig").splitlines()[0].split(";")
    assert header[-1] == "description"


def test_xlsx(client: TestClient) -> None:
    ids = seed(client, 3)
    answer = client.get("/api/v1/reports", params={"format": "xlsx", "q": "ikkje"})
    assert answer.headers["content-type"].startswith("application/vnd.openxmlformats")
    sheet = load_workbook(io.BytesIO(answer.content), read_only=True).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "id"
    assert {int(r[0]) for r in rows[1:]} >= set(ids[:3])


def test_export_respects_departments_and_roles(make_app: Callable[..., FastAPI], api_keys: dict[Role, str],
                                               client: TestClient, session: Session) -> None:
    from app.auth.keys import create_key

    ids = seed(client, 2)  # filed under Etat for skole (BBS)
    with TestClient(make_app(), headers=bearer(api_keys[Role.DASHBOARD])) as dashboard:
        assert dashboard.get("/api/v1/reports", params={"format": "csv"}).status_code == 403
    _, key = create_key(session, "export-bbsm", Role.ADVISER, ["BBSM"])
    with TestClient(make_app(), headers=bearer(key)) as adviser:
        text = adviser.get("/api/v1/reports", params={"format": "csv"}).content.decode("utf-8-sig")
    exported = {int(r["id"]) for r in csv.DictReader(io.StringIO(text), delimiter=";")}
    assert not exported & set(ids)


def test_unknown_export_format_is_422(client: TestClient) -> None:
    assert client.get("/api/v1/reports", params={"format": "pdf"}).status_code == 422
