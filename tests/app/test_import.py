"""Historical import from CSV and XLSX through the real CLI and database; re-running changes nothing."""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import Engine, delete, func, select
from typer.testing import CliRunner

from app.cli import cli
from app.ingest.mapping import parse_local_datetime
from app.report.models import Report

HEADINGS = ["Saksnr", "Tittel", "Beskrivelse", "Kategori", "Registrert", "Enhet", "Målgrupper", "Versjon"]
ROWS = [
    ["IMP-1", "Epikrise kom ikke", "Helsestasjonen fikk ingen epikrise etter fødselen.", "Informasjonsplikt",
     "2024-02-01T10:00:00", "Etat for barn og familie – Helsestasjon Fana", "gravide_og_spedbarn", "3"],
    ["IMP-2", "Fall i gymsalen", "Elev falt og slo kneet.", "Pasient-/brukerskade", "2024-03-05T09:00:00",
     "Etat for skole – Garnes skole", "barn_6_12", "1"],
    ["IMP-3", "Ugyldig", "Ukjent målgruppe.", "Annet", "2024-03-06T09:00:00", "", "tenaringer", "1"],
    ["", "Mangler saksnummer", "x", "Annet", "2024-03-07T09:00:00", "", "", "1"],
]
MAPPING = """
list_separator = ";"
[columns]
external_id = "Saksnr"
title = "Tittel"
description = "Beskrivelse"
reported_category = "Kategori"
reported_at = "Registrert"
reporting_unit = "Enhet"
target_groups = "Målgrupper"
source_version = "Versjon"
[defaults]
source_system = "bk-import-test"
"""


@pytest.fixture
def cleanup(engine: Engine):  # type: ignore[no-untyped-def]
    yield
    with engine.begin() as connection:
        connection.execute(delete(Report).where(Report.source_system == "bk-import-test"))


def write_csv(path: Path) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle, delimiter=";")
        writer.writerow(HEADINGS)
        writer.writerows(ROWS)


def write_xlsx(path: Path) -> None:
    book = Workbook()
    sheet = book.active
    sheet.append(HEADINGS)
    for row in ROWS:
        sheet.append([int(v) if v.isdigit() else v for v in row])
    book.save(path)


@pytest.mark.parametrize("writer", [write_csv, write_xlsx], ids=["csv", "xlsx"])
def test_import_validates_upserts_reports_rejects_and_is_idempotent(
    writer, tmp_path: Path, database_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch, cleanup: None,  # type: ignore[no-untyped-def]
) -> None:
    monkeypatch.setenv("AVVIK_DATABASE_URL", database_url)
    export = tmp_path / ("export.csv" if writer is write_csv else "export.xlsx")
    writer(export)
    mapping = tmp_path / "mapping.toml"
    mapping.write_text(MAPPING, encoding="utf-8")
    runner = CliRunner()
    first = runner.invoke(cli, ["import", str(export), "--mapping", str(mapping)])
    assert first.exit_code == 1, first.output  # rows were rejected: a script must be able to tell
    assert "created 2" in first.output and "invalid 2" in first.output
    assert "line 4:" in first.output and "tenaringer" in first.output and "line 5:" in first.output
    rejected = tmp_path / f"{export.name}.rejected.csv"  # the XLSX's own name, not the CSV's
    assert f"written to {rejected}" in first.output
    assert "IMP-3" in rejected.read_text(encoding="utf-8-sig") and "error" in rejected.read_text(
        encoding="utf-8-sig").splitlines()[0]
    assert [p.name for p in tmp_path.glob("*.rejected.csv")] == [rejected.name]

    again = runner.invoke(cli, ["import", str(export), "--mapping", str(mapping)])
    assert again.exit_code == 1  # the same two rows are still rejected
    assert "unchanged 2" in again.output and "created" not in again.output
    with engine.connect() as connection:
        stored = connection.execute(select(Report.external_id, Report.agency_code, Report.category_code)
                                    .where(Report.source_system == "bk-import-test")
                                    .order_by(Report.external_id)).all()
        scored = connection.scalar(select(func.count()).select_from(Report)
                                   .where(Report.source_system == "bk-import-test", Report.score.has()))
    assert [tuple(r) for r in stored] == [("IMP-1", "barn_og_familie", "informasjonsplikt"),
                                          ("IMP-2", "skole", "pasient_brukerskade")]
    assert scored == 2


def test_unreadable_files_are_refused(tmp_path: Path) -> None:
    text = tmp_path / "export.txt"
    text.write_text("x", encoding="utf-8")
    assert CliRunner().invoke(cli, ["import", str(text)]).exit_code == 2
    bad = tmp_path / "m.toml"
    bad.write_text("[columns]\nnot_a_field = 'x'\n", encoding="utf-8")
    csv_file = tmp_path / "e.csv"
    write_csv(csv_file)
    result = CliRunner().invoke(cli, ["import", str(csv_file), "--mapping", str(bad)])
    assert result.exit_code == 2 and "not_a_field" in result.output


NORWEGIAN_HEADINGS = ["Saksnr", "Tittel", "Beskrivelse", "Registrert dato", "Hendelsesdato", "Enhet", "Kategori",
                      "Status", "Versjon"]
NORWEGIAN_ROWS = [
    ["NO-1", "Epikrise kom ikke", "Helsestasjonen fikk ingen epikrise.", "03.12.2025 10:00", "03.12.2025",
     "Etat for barn og familie – Helsestasjon Fana", "Informasjonsplikt", "Under behandling", "1"],
    ["NO-2", "Fall i gymsalen", "Elev falt og slo kneet.", "3.12.2025 10.00", "2.12.2025 kl. 14.30",
     "Etat for skole – Garnes skole", "Pasient-/brukerskade", "Registrert", "2"],
]


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_a_norwegian_export_imports_without_a_mapping(
    suffix: str, tmp_path: Path, database_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AVVIK_DATABASE_URL", database_url)
    export = tmp_path / f"eksport{suffix}"
    source = f"bk-import-test-{suffix[1:]}"
    headings, rows = [*NORWEGIAN_HEADINGS, "Kildesystem"], [[*row, source] for row in NORWEGIAN_ROWS]
    if suffix == ".csv":
        with export.open("w", encoding="utf-8-sig", newline="") as handle:
            csv.writer(handle, delimiter=";").writerows([headings, *rows])
    else:
        book = Workbook()
        for row in [headings, *rows]:
            book.active.append(row)
        book.save(export)
    try:
        result = CliRunner().invoke(cli, ["import", str(export)])
        assert result.exit_code == 0, result.output
        assert "Saksnr → external_id" in result.output and "Registrert dato → reported_at" in result.output
        assert "Hendelsesdato → occurred_at" in result.output and "created 2" in result.output
        with engine.connect() as connection:
            stored = {r.external_id: r for r in connection.execute(
                select(Report.external_id, Report.reported_at, Report.occurred_at, Report.status,
                       Report.agency_code).where(Report.source_system == source))}
        # Oslo is UTC+1 in December: 10:00 there is 09:00 UTC.
        assert stored["NO-1"].reported_at.replace(tzinfo=None) == datetime(2025, 12, 3, 9, 0)
        assert stored["NO-1"].occurred_at.replace(tzinfo=None) == datetime(2025, 12, 2, 23, 0)
        assert stored["NO-2"].reported_at.replace(tzinfo=None) == datetime(2025, 12, 3, 9, 0)
        assert stored["NO-2"].occurred_at.replace(tzinfo=None) == datetime(2025, 12, 2, 13, 30)
        assert (stored["NO-1"].status, stored["NO-1"].agency_code) == ("under_behandling", "barn_og_familie")
    finally:
        with engine.begin() as connection:
            connection.execute(delete(Report).where(Report.source_system == source))


def test_missing_columns_are_named_once_with_the_headings_found_and_a_mapping_to_start_from(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AVVIK_DATABASE_URL", database_url)
    export = tmp_path / "uten-saksnr.csv"
    export.write_text("Overskrift;Tekst;Dato\nA;b;03.12.2025\nC;d;04.12.2025\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["import", str(export)])
    assert result.exit_code == 2
    assert result.output.count("has no column for") == 1  # once, not once per row
    assert "external_id, source_version" in result.output
    assert "its headings are: Overskrift, Tekst, Dato" in result.output
    assert 'title = "Overskrift"' in result.output and 'reported_at = "Dato"' in result.output
    assert "source_version = 1" in result.output and "Field required" not in result.output
    assert not list(tmp_path.glob("*.rejected.csv"))


@pytest.mark.parametrize(("text", "expected"), [
    ("03.12.2025 10:00", datetime(2025, 12, 3, 10, 0)),
    ("03.12.2025", datetime(2025, 12, 3)),
    ("3.12.2025 10.00", datetime(2025, 12, 3, 10, 0)),
    ("03.12.2025 kl. 10:00", datetime(2025, 12, 3, 10, 0)),
    ("03.12.2025 10:00:15", datetime(2025, 12, 3, 10, 0, 15)),
    ("31.02.2025", None),
    ("2025-12-03T10:00:00", None),
    ("3/12/2025", None),
])
def test_norwegian_dates_and_times_are_read(text: str, expected: datetime | None) -> None:
    assert parse_local_datetime(text) == expected


def test_a_date_that_is_no_date_is_rejected_naming_the_field(
    tmp_path: Path, database_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AVVIK_DATABASE_URL", database_url)
    export = tmp_path / "feil.csv"
    export.write_text("Saksnr;Tittel;Registrert dato;Versjon;Kildesystem\n"
                      "BAD-1;Tittel;31.02.2025 10:00;1;bk-import-test\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["import", str(export)])
    assert result.exit_code == 1
    assert "line 2: reported_at:" in result.output
    assert "BAD-1" in (tmp_path / "feil.csv.rejected.csv").read_text(encoding="utf-8-sig")
