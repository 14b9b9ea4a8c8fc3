"""Exports of the report list: CSV as Norwegian Excel opens it, XLSX, every matching report, audited."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
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


def test_export_reads_every_report_once_across_chunks_of_equal_times(client: TestClient,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from app.report import export

    ids = seed(client, 7)  # every report has the same reported_at: the keyset must break ties by id
    monkeypatch.setattr(export, "CHUNK", 3)
    text = client.get("/api/v1/reports", params={"format": "csv", "q": "beskjed"}).content
    exported = [int(r["id"]) for r in csv.DictReader(io.StringIO(text.decode("utf-8-sig")), delimiter=";")]
    assert len(exported) == len(set(exported))  # once each
    assert set(ids) <= set(exported)


def test_export_rows_equal_what_the_list_shows(client: TestClient) -> None:
    items = [report(f"EXPL-{i}", source_system="export-labels", title=f"Skolen ga ikkje beskjed {i}",
                    target_groups=[] if i % 2 else ["barn_6_12"], services_involved=["skole", "barnevern"][: i % 3])
             for i in range(6)]
    ids = [r["id"] for r in client.post("/api/v1/reports/batch", json={"reports": items}).json()["results"]]
    client.post(f"/api/v1/reports/{ids[0]}/review", json={"decision": "confirm"})
    listed = {r["id"]: r for r in client.get("/api/v1/reports", params={"q": "ikkje beskjed", "limit": 50}).json()
              ["items"]}
    text = client.get("/api/v1/reports", params={"format": "csv", "q": "ikkje beskjed"}).content.decode("utf-8-sig")
    exported = {int(r["id"]): r for r in csv.DictReader(io.StringIO(text), delimiter=";")}
    assert set(exported) == set(listed) >= set(ids)
    for report_id, line in exported.items():
        item = listed[report_id]

        def codes(dimension: str, suggested: bool, item: dict[str, Any] = item) -> str:
            return ",".join(sorted(lab["code"] for lab in item["labels"] if lab["dimension"] == dimension
                                   and (lab["provenance"] == "classifier") == suggested))

        assert line["target_groups"] == codes("target_group", False)
        assert line["services"] == codes("service", False)
        assert line["suggested_target_groups"] == codes("target_group", True)
        assert line["suggested_services"] == codes("service", True)
        assert line["confirmed_category"] == (item["confirmed_category"] or "")
        assert line["flagged"] == ("true" if item["flagged"] else "false")
        if item["score"] is None:
            assert line["score"] == ""
        else:
            assert float(line["score"].replace(",", ".")) == pytest.approx(item["score"], abs=5e-5)
        assert datetime.fromisoformat(line["reported_at"]) == datetime.fromisoformat(
            item["reported_at"].replace("Z", "+00:00"))


def test_cells_are_what_norwegian_excel_reads() -> None:
    from app.export import cell

    assert cell(-3) == "-3"  # a negative number is a number, not a formula made inert
    assert cell(0.25) == "0,25"  # decimal comma: the semicolon separates columns
    assert cell(True) == "true"
    assert cell(None) == ""
    assert cell("-1 fra NAV") == "'-1 fra NAV"
    assert cell(["=cmd|' /C calc'!A0", "x"]).startswith("'=")  # a list's first item is guarded too
    assert cell(["barnehage", "barnevern"]) == "barnehage,barnevern"
