"""Target groups, services and categories as people write them: codes, labels and their common variants."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.taxonomy.models import CodeKind
from app.taxonomy.service import load_taxonomy
from tests.app.test_review import POSITIVE
from tests.helpers import delivered, report

VARIANTS = {
    CodeKind.TARGET_GROUP: {
        "Barn 6–12 år": "barn_6_12", "barn 6-12": "barn_6_12", "Barn 6 til 12 år": "barn_6_12",
        "BARN_6_12": "barn_6_12", "Ungdom 13-17 år": "ungdom_13_17", "unge voksne (18–25 år)": "unge_voksne_18_25",
        "Gravide og spedbarn": "gravide_og_spedbarn", "barn som parorende": "barn_som_parorende",
        "Foreldre og familien": "foreldre_og_familie", "Voksen": "voksne",
    },
    CodeKind.SERVICE: {
        "Skolehelsetjenesten": "skolehelsetjeneste", "barnehagen": "barnehage", "Barnehager": "barnehage",
        "skolene": "skole", "SFO": "sfo", "AKS": "sfo", "Helsestasjonen": "helsestasjon", "Fastlegen": "fastlege",
        "Barnevernet": "barnevern", "Legevakta": "legevakt", "Sykehjemmet": "sykehjem", "Politiet": "politi",
        "Hjemmetjenesten": "hjemmetjenester", "IT-systemet": "it_system", "Psykisk helse & rus": "psykisk_helse_rus",
        "nav": "nav", "Tjenester til utviklingshemmede": "utviklingshemmede",
    },
}


def test_every_code_and_label_of_the_default_taxonomy_and_common_variants_find_their_code(session: Session) -> None:
    taxonomy = load_taxonomy(session)
    for kind in VARIANTS:
        for code, row in taxonomy.codes[kind].items():
            assert (taxonomy.find_code(kind, code), taxonomy.find_code(kind, row.label)) == (code, code)
        for text, code in VARIANTS[kind].items():
            assert taxonomy.find_code(kind, text) == code, text
    # A word with no band is no target group, and what is not a service stays unknown.
    assert taxonomy.find_code(CodeKind.TARGET_GROUP, "Barn") is None
    assert taxonomy.find_code(CodeKind.SERVICE, "Brannvesenet") is None


def test_a_delivery_with_labels_is_stored_and_answered_with_codes(client: TestClient) -> None:
    body = report(target_groups=["Barn 6–12 år", "foreldre og familie"],
                  services_involved=["Skolehelsetjenesten", "skolen", "skole"])
    stored = delivered(client, body)
    assert stored["outcome"] == "created"
    assert stored["target_groups"] == ["barn_6_12", "foreldre_og_familie"]
    assert stored["services_involved"] == ["skole", "skolehelsetjeneste"]
    # The same version sent again with codes says the same thing: unchanged, not a conflict.
    same = report(body["external_id"], target_groups=["barn_6_12", "foreldre_og_familie"],
                  services_involved=["skole", "skolehelsetjeneste"])
    assert client.post("/api/v1/reports", json=same).json()["outcome"] == "unchanged"


def test_unknown_values_are_still_a_422_listing_the_valid_codes(client: TestClient) -> None:
    answer = client.post("/api/v1/reports", json=report(target_groups=["Barn"], services_involved=["Brannvesenet"]))
    assert answer.status_code == 422
    fields = {f["field"]: f["reason"] for f in answer.json()["fields"]}
    assert set(fields) == {"target_groups[0]", "services_involved[0]"}
    assert "barn_6_12" in fields["target_groups[0]"] and "skolehelsetjeneste" in fields["services_involved[0]"]


def test_a_review_takes_labels_and_stores_codes(client: TestClient) -> None:
    stored = delivered(client, report(**POSITIVE))
    answer = client.post(f"/api/v1/reports/{stored['id']}/review", json={
        "decision": "correct", "category": "Informasjonsplikt", "target_groups": ["Ungdom 13–17 år"],
        "services": ["Skolehelsetjenesten", "BUP"]})
    assert answer.status_code == 201, answer.text
    assert (answer.json()["category"], answer.json()["target_groups"], answer.json()["services"]) == (
        "informasjonsplikt", ["ungdom_13_17"], ["bup", "skolehelsetjeneste"])
    path = client.post(f"/api/v1/reports/{stored['id']}/review", json={
        "decision": "correct", "category": "Kommunikasjon og samhandling / Samhandling barn og unge"})
    assert path.json()["category"] == "samhandling_barn_unge"
    bad = client.post(f"/api/v1/reports/{stored['id']}/review", json={
        "decision": "correct", "category": "Noe annet", "services": ["Brannvesenet"]})
    assert bad.status_code == 422
    assert {f["field"] for f in bad.json()["fields"]} == {"category", "services[0]"}


@pytest.mark.parametrize(("params", "expected"), [
    ({"target_group": "Barn 6–12 år"}, True),
    ({"service": "Skolehelsetjenesten"}, True),
    ({"service": ["Barnevernet", "skolen"]}, True),
    ({"category": "Kommunikasjon og samhandling"}, True),
    ({"department": "Byrådsavdeling for barnehage og skole", "agency": "Etat for skole"}, True),
    ({"target_group": "Ungdom 13–17 år"}, False),
])
def test_filters_take_labels(client: TestClient, params: dict[str, object], expected: bool) -> None:
    stored = client.post("/api/v1/reports", json=report()).json()
    answer = client.get("/api/v1/reports", params={**params, "limit": 500})
    assert answer.status_code == 200, answer.text
    assert (stored["id"] in {i["id"] for i in answer.json()["items"]}) is expected
