"""Exports people open: no formula can run, Oslo time, a workbook laid out for reading, Norwegian headings,
and an audit log that says which reports left."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from openpyxl.worksheet.worksheet import Worksheet
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent, AuditEventReport
from app.auth.principal import Role
from app.export import HEADINGS_NB
from app.report.export import COLUMNS
from tests.conftest import bearer
from tests.helpers import report

HOSTILE_TITLES = ["\u0001=HYPERLINK(\"http://evil.example\",\"x\")", "\u000e=1+1", "\u001b=1+1", "@SUM(A1)", "#N/A"]


def unit(name: str) -> dict[str, str]:
    """A reporting unit of the test's own, so that its filter finds only the test's reports."""
    return {"agency": "Etat for skole", "unit": name}


def csv_rows(answer: Any) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(answer.content.decode("utf-8-sig")), delimiter=";"))


def workbook(answer: Any) -> Worksheet:
    # Not read-only: a full load keeps each cell's data type, which is what the formula check needs.
    sheet = load_workbook(io.BytesIO(answer.content)).active
    assert isinstance(sheet, Worksheet)
    return sheet


def latest_event(session: Session, action: str) -> AuditEvent:
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == action)
                            .order_by(AuditEvent.id.desc())).first()
    assert event is not None
    return event


def exported_ids(session: Session, event: AuditEvent) -> set[int]:
    return set(session.scalars(select(AuditEventReport.report_id).where(AuditEventReport.event_id == event.id)))


def test_no_xlsx_cell_is_a_formula_whatever_the_text_starts_with(client: TestClient) -> None:
    items = [report(f"XF-{i}", source_system="xlsx-formula", title=title, reported_at="2019-05-01T10:00:00+02:00",
                    reported_category="=1+1", reporting_unit=unit("\u0002=2+2"))
             for i, title in enumerate(HOSTILE_TITLES)]
    results = client.post("/api/v1/reports/batch", json={"reports": items}).json()["results"]
    assert {r["outcome"] for r in results} == {"created"}, results
    answer = client.get("/api/v1/reports", params={"format": "xlsx", "reported_from": "2019-05-01",
                                                          "reported_to": "2019-05-01"})
    assert answer.status_code == 200
    sheet = workbook(answer)
    cells = [c for row in sheet.iter_rows() for c in row]
    assert cells and not [c.coordinate for c in cells if c.data_type == "f"]
    header = [c.value for c in next(sheet.iter_rows(max_row=1))]
    titles = {c.value for c in sheet[chr(ord("A") + header.index("title"))][1:]}
    # The text is kept as written, without its control characters, as a text cell that stays text when edited.
    assert titles == {"=HYPERLINK(\"http://evil.example\",\"x\")", "=1+1", "@SUM(A1)", "#N/A"}
    guarded = [c for c in cells if isinstance(c.value, str) and c.value.lstrip()[:1] in "=+-@"]
    assert guarded and all(c.data_type == "s" and c.quotePrefix for c in guarded)


def test_csv_strips_control_characters_before_guarding_formulas(client: TestClient) -> None:
    items = [report(f"CF-{i}", source_system="csv-formula", title=title, reporting_unit=unit("Formelskolen"))
             for i, title in enumerate(HOSTILE_TITLES)]
    client.post("/api/v1/reports/batch", json={"reports": items})
    rows = csv_rows(client.get("/api/v1/reports", params={"format": "csv", "unit": "Formelskolen"}))
    titles = {r["title"] for r in rows}
    assert titles == {"'=HYPERLINK(\"http://evil.example\",\"x\")", "'=1+1", "'@SUM(A1)", "#N/A"}


def test_a_formula_behind_spaces_or_control_characters_is_guarded() -> None:
    from app.export import cell, inert

    assert inert(" =1+1") == "' =1+1"  # spreadsheets skip leading spaces
    assert cell("\u0001=1+1") == "'=1+1"  # control characters go first, then the guard
    assert cell(["\u001b@x", "y"]) == "'@x,y"
    assert cell("1 + 1 = 2") == "1 + 1 = 2"


def test_times_are_oslo_time_text_in_csv_and_date_cells_in_xlsx(client: TestClient) -> None:
    place = unit("Tidsskolen")
    client.post("/api/v1/reports/batch", json={"reports": [
        report("TZ-winter", reporting_unit=place, reported_at="2026-03-03T09:00:00+00:00",
               occurred_at="2026-03-02T23:30:00Z"),
        report("TZ-summer", reporting_unit=place, reported_at="2026-07-01T09:00:00+00:00", occurred_at=None)]})
    rows = {r["external_id"]: r for r in csv_rows(
        client.get("/api/v1/reports", params={"format": "csv", "unit": "Tidsskolen"}))}
    assert rows["TZ-winter"]["reported_at"] == "2026-03-03T10:00:00+01:00"
    assert rows["TZ-winter"]["occurred_at"] == "2026-03-03T00:30:00+01:00"  # the next day in Oslo
    assert rows["TZ-summer"]["reported_at"] == "2026-07-01T11:00:00+02:00"
    assert rows["TZ-summer"]["occurred_at"] == ""

    sheet = workbook(client.get("/api/v1/reports", params={"format": "xlsx", "unit": "Tidsskolen"}))
    header = [c.value for c in sheet[1]]
    by_case = {row[header.index("external_id")].value: row for row in sheet.iter_rows(min_row=2)}
    winter = by_case["TZ-winter"][header.index("reported_at")]
    assert winter.is_date and winter.value == datetime(2026, 3, 3, 10, 0)
    assert winter.number_format == "dd.mm.yyyy hh:mm"
    assert by_case["TZ-summer"][header.index("reported_at")].value == datetime(2026, 7, 1, 11, 0)


def test_workbook_is_laid_out_for_reading(client: TestClient) -> None:
    client.post("/api/v1/reports/batch", json={"reports": [report(f"LAY-{i}", reporting_unit=unit("Oppsettskolen"))
                                                            for i in range(3)]})
    sheet = workbook(client.get("/api/v1/reports", params={"format": "xlsx", "unit": "Oppsettskolen",
                                                           "include_description": True}))
    columns = [*COLUMNS, "description"]
    assert [c.value for c in sheet[1]] == columns
    assert sheet.freeze_panes == "A2"  # the heading line stays in view
    assert sheet.auto_filter.ref == f"A1:{sheet.cell(1, len(columns)).column_letter}4"  # and can filter
    widths = {c.value: sheet.column_dimensions[c.column_letter].width for c in sheet[1]}
    assert widths["title"] == 60 and widths["description"] == 90 and widths["id"] >= 12


def test_norwegian_headings_on_request(client: TestClient) -> None:
    client.post("/api/v1/reports/batch", json={"reports": [report("NB-1", reporting_unit=unit("Bokmålsskolen"))]})
    default = client.get("/api/v1/reports", params={"format": "csv", "unit": "Bokmålsskolen"})
    assert default.content.decode("utf-8-sig").splitlines()[0].split(";") == COLUMNS
    nb = csv_rows(client.get("/api/v1/reports", params={"format": "csv", "unit": "Bokmålsskolen",
                                                        "lang": "nb"}))
    assert list(nb[0]) == [HEADINGS_NB[c] for c in COLUMNS]
    assert nb[0]["Saksnummer"] == "NB-1" and nb[0]["Tittel"].startswith("Skolen")
    sheet = workbook(client.get("/api/v1/reports", params={"format": "xlsx", "unit": "Bokmålsskolen",
                                                           "lang": "nb"}))
    assert [c.value for c in sheet[1]][:3] == ["ID", "Kildesystem", "Saksnummer"]
    queue = client.get("/api/v1/review-queue", params={"format": "csv", "lang": "nb"})
    assert queue.content.decode("utf-8-sig").splitlines()[0].startswith("Plass i køen;Kontrollutvalg;ID;")
    assert client.get("/api/v1/reports", params={"format": "csv", "lang": "de"}).status_code == 422


def test_an_export_records_every_report_it_carried(make_app: Callable[..., FastAPI], api_keys: dict[Role, str],
                                                   session: Session) -> None:
    app = make_app(scoring_enabled=False)  # the point is the audit trail; scoring 10,000 reports adds nothing
    with TestClient(app, headers=bearer(api_keys[Role.ADMIN])) as admin:
        for start in range(0, 10_000, 1000):
            items = [report(f"AUD-{i:05d}", source_system="audit-export", title=f"Melding {i}",
                            reporting_unit=unit("Revisjonsskolen"))
                     for i in range(start, start + 1000)]
            assert admin.post("/api/v1/reports/batch", json={"reports": items}).status_code == 200
    with TestClient(app, headers=bearer(api_keys[Role.ADVISER])) as adviser:
        rows = csv_rows(adviser.get("/api/v1/reports", params={"format": "csv", "unit": "Revisjonsskolen"}))
        event = latest_event(session, "report.export.csv")
        ids = {int(r["id"]) for r in rows}
        assert len(ids) == 10_000
        assert exported_ids(session, event) == ids  # exactly the reports that left, not just the filter

        sheet = workbook(adviser.get("/api/v1/reports", params={"format": "xlsx", "unit": "Revisjonsskolen",
                                                                "q": "Melding 77"}))
        in_sheet = {row[0].value for row in sheet.iter_rows(min_row=2)}
        assert in_sheet and exported_ids(session, latest_event(session, "report.export.xlsx")) == in_sheet
        # The audit log answers "who took this report out?" for an export too.
        some = next(iter(ids))
        with TestClient(app, headers=bearer(api_keys[Role.ADMIN])) as admin:
            events = admin.get("/api/v1/audit", params={"report_id": some, "action": "report.export.csv"}).json()
        assert [e["id"] for e in events["items"]] == [event.id]


def test_the_review_queue_export_records_its_reports(client: TestClient, session: Session) -> None:
    flagged = report("RQ-1", source_system="queue-export", reported_category="Annet",
                     title="Barnevernet ga ikke tilbakemelding til barnehagen",
                     description="Barnehagen sendte bekymringsmelding, men barnevernet svarte aldri.",
                     target_groups=[], services_involved=[])
    client.post("/api/v1/reports/batch", json={"reports": [flagged]})
    rows = csv_rows(client.get("/api/v1/review-queue", params={"format": "csv"}))
    assert rows, "the queue holds at least the flagged report"
    event = latest_event(session, "review.queue.export.csv")
    assert exported_ids(session, event) == {int(r["id"]) for r in rows}


def test_audit_csv_has_its_filter_as_json_and_oslo_time(client: TestClient) -> None:
    client.get("/api/v1/reports", params={"status": ["registrert"], "q": "hemmelig"})
    rows = csv_rows(client.get("/api/v1/audit", params={"format": "csv", "action": "report.list"}))
    query = json.loads(rows[0]["query"])
    assert query["status"] == ["registrert"] and query["q"] == "[masked]"
    assert datetime.fromisoformat(rows[0]["at"]).utcoffset() in {
        datetime(2026, 1, 1).astimezone(_oslo()).utcoffset(), datetime(2026, 7, 1).astimezone(_oslo()).utcoffset()}


def _oslo() -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo("Europe/Oslo")


def _readme_power_query() -> str:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    marker = readme.index("<!-- power-query:")
    return readme[readme.index("```powerquery", marker) + len("```powerquery"):readme.index("```\n", marker + 20)]


def test_readme_power_query_example_works(make_app: Callable[..., FastAPI], api_keys: dict[Role, str],
                                          client: TestClient) -> None:
    """The Power Query in the README, read from the README, is the request a dashboard key may make, and its
    answer is what Csv.Document with those options reads: UTF-8 (65001), semicolons, a heading line."""
    query = _readme_power_query()
    path = re.search(r'RelativePath = "([^"]+)"', query)
    header = re.search(r'Headers = \[#"([^"]+)" = ApiKey\]', query)
    options = re.search(r'\[Delimiter = "(.)", Encoding = (\d+),', query)
    parameters = re.search(r"Query = \[(.*)\],\n", query)
    assert path and header and options and parameters, query
    params: list[tuple[str, str]] = []
    for name, value in re.findall(r'(\w+) = (\{[^}]*\}|"[^"]*")', parameters.group(1)):
        params += [(name, v) for v in re.findall(r'"([^"]*)"', value)]
    assert ("by", "period") in params and ("format", "csv") in params

    client.post("/api/v1/reports/batch", json={"reports": [report(f"PBI-{i}") for i in range(6)]})
    with TestClient(make_app(), headers={header.group(1): api_keys[Role.DASHBOARD]}) as dashboard:
        answer = dashboard.get("/" + path.group(1), params=params)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    assert options.group(2) == "65001" and answer.content.startswith("\ufeff".encode())
    lines = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig")), delimiter=options.group(1)))
    assert len(lines) > 1 and all(lines[0]) and {"period", "target_group"} <= set(lines[0])
    assert all(len(line) == len(lines[0]) for line in lines)
