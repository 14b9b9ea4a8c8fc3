"""The taxonomy as data: tree, add and retire through the API and the CLI, label normalisation."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from app.cli import cli
from app.taxonomy.models import CategoryAlias
from app.taxonomy.service import normalise_label

URL = "/api/v1/taxonomy"


def test_taxonomy_has_the_new_category_under_communication(client: TestClient) -> None:
    taxonomy = client.get(URL).json()
    communication = next(c for c in taxonomy["categories"] if c["code"] == "kommunikasjon_og_samhandling")
    children = {c["code"]: c["label"] for c in communication["children"]}
    assert children["samhandling_barn_unge"] == "Samhandling barn og unge"
    assert len(children) == 13
    assert taxonomy["version"] is not None


def test_seven_target_groups_count_as_children_and_youth(client: TestClient) -> None:
    groups = {g["code"]: g["children_and_youth"] for g in client.get(URL).json()["target_groups"]}
    assert {c for c, cy in groups.items() if cy} == {
        "gravide_og_spedbarn", "barn_1_5", "barn_6_12", "ungdom_13_17", "unge_voksne_18_25",
        "foreldre_og_familie", "barn_som_parorende"}
    assert {c for c, cy in groups.items() if not cy} == {"voksne", "eldre"}


def test_services_and_organisation(client: TestClient) -> None:
    taxonomy = client.get(URL).json()
    assert len(taxonomy["services"]) == 26
    departments = {d["code"]: [a["code"] for a in d["agencies"]] for d in taxonomy["departments"]}
    assert set(departments) == {"BBSM", "BBS", "BEHO", "BNKI"}
    assert "spesialpedagogiske_tjenester" in departments["BBS"]


def test_add_and_retire_through_the_api(client: TestClient) -> None:
    added = client.post(f"{URL}/service", json={"code": "ungdomsklubb", "label": "Ungdomsklubb"})
    assert added.status_code == 201
    assert client.post(f"{URL}/service", json={"code": "ungdomsklubb", "label": "x"}).status_code == 409
    assert client.post(f"{URL}/service", json={"code": "Ugyldig Kode", "label": "x"}).status_code == 422
    assert client.post(f"{URL}/agency", json={"code": "ny_etat", "label": "Ny etat"}).json()["fields"][0]["field"] \
        == "parent"
    retired = client.post(f"{URL}/service/ungdomsklubb/retire", json={"replaced_by": "fritid_kultur_idrett"})
    assert retired.json() == {"kind": "service", "code": "ungdomsklubb", "label": "Ungdomsklubb", "parent": None,
                              "retired": True, "replaced_by": "fritid_kultur_idrett"}
    services = {s["code"]: s for s in client.get(URL).json()["services"]}
    assert services["ungdomsklubb"]["retired"] is True
    assert client.post(f"{URL}/service/finnes_ikke/retire", json={}).status_code == 404
    assert client.post(f"{URL}/service/skole/retire", json={"replaced_by": "finnes_ikke"}).status_code == 422


def test_new_subcategory_is_mapped_and_included_by_its_parent(client: TestClient) -> None:
    client.post(f"{URL}/category", json={"code": "samhandling_eldre", "label": "Samhandling eldre",
                                          "parent": "kommunikasjon_og_samhandling"})
    from tests.helpers import delivered, report

    stored = delivered(client, report(reported_category="samhandling  ELDRE"))
    assert stored["category"] == "samhandling_eldre"
    listed = client.get("/api/v1/reports", params={"category": "kommunikasjon_og_samhandling", "limit": 500}).json()
    assert stored["id"] in {i["id"] for i in listed["items"]}


@pytest.mark.parametrize(("a", "b"), [
    ("Kommunikasjon og samhandling", "kommunikasjon & SAMHANDLING"),
    ("Mangler ved kommunikasjon/informasjon", "Mangler ved kommunikasjon / informasjon"),
    ("Elektronisk samhandling (internt)", "elektronisk  samhandling(internt)"),
    ("Pasient-/brukerskade", "Pasient - / brukerskade"),
])
def test_label_normalisation(a: str, b: str) -> None:
    assert normalise_label(a) == normalise_label(b)


def test_seeded_aliases_are_stored_normalised(session: Session) -> None:
    keys = list(session.scalars(select(CategoryAlias.alias_key)))
    assert keys and all(k == normalise_label(k) for k in keys)


def test_cli_lists_adds_and_retires(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AVVIK_DATABASE_URL", database_url)
    runner = CliRunner()
    code = f"cli_test_{abs(hash(database_url)) % 10_000}"
    added = runner.invoke(cli, ["taxonomy", "add", "target_group", code, "CLI-gruppe", "--children-and-youth"])
    assert added.exit_code == 0, added.output
    listed = runner.invoke(cli, ["taxonomy", "list", "target_group"])
    assert code in listed.output and "CLI-gruppe" in listed.output
    retired = runner.invoke(cli, ["taxonomy", "retire", "target_group", code, "--replaced-by", "barn_6_12"])
    assert retired.exit_code == 0, retired.output
    assert "[retired, use barn_6_12]" in runner.invoke(cli, ["taxonomy", "list", "target_group"]).output
    again = runner.invoke(cli, ["taxonomy", "add", "target_group", code, "igjen"])
    assert again.exit_code == 1 and "exists" in again.output
