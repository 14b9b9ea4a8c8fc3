"""Historical import from CSV and XLSX through the real CLI and database; re-running changes nothing."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import Engine, delete, func, select
from typer.testing import CliRunner

from app.cli import cli
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
    assert first.exit_code == 0, first.output
    assert "created 2" in first.output and "invalid 2" in first.output
    assert "line 4:" in first.output and "tenaringer" in first.output and "line 5:" in first.output
    rejected = export.with_suffix(".rejected.csv").read_text(encoding="utf-8-sig")
    assert "IMP-3" in rejected and "error" in rejected.splitlines()[0]

    again = runner.invoke(cli, ["import", str(export), "--mapping", str(mapping)])
    assert again.exit_code == 0
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
