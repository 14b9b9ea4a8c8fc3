"""Reading and filtering reports through the real app: every filter, combinations, pagination."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.helpers import report

URL = "/api/v1/reports"


@pytest.fixture
def corpus(client: TestClient) -> dict[str, int]:
    """Seven reports that differ in every filtered field; name -> id."""
    items = {
        "school": report("F-1", reported_category="Samhandling barn og unge", target_groups=["barn_6_12"],
                         services_involved=["skole", "skolehelsetjeneste"], status="lukket",
                         reported_at="2026-01-31T23:30:00+01:00", reporting_unit="Etat for skole – Garnes skole",
                         title="Elev startet uten beskjed til helsesykepleier"),
        "health": report("F-2", reported_category="Informasjonsplikt", target_groups=["gravide_og_spedbarn"],
                         services_involved=["sykehus", "helsestasjon"], reported_at="2026-02-01T00:30:00+01:00",
                         reporting_unit="Etat for barn og familie – Helsestasjon Åsane",
                         title="Epikrise kom ikke", description="Ingen fødselsmelding fra sykehuset."),
        "elderly": report("F-3", reported_category="Kommunikasjon og samhandling", target_groups=["eldre"],
                          services_involved=["sykehus", "hjemmetjenester"], reported_at="2026-02-10T12:00:00+01:00",
                          reporting_unit="Etat for hjemmebaserte tjenester – Hjemmesykepleien Laksevåg",
                          title="PLO-melding mangler", description="Pasient utskrevet uten varsel."),
        "fall": report("F-4", reported_category="Pasient-/brukerskade", target_groups=["barn_1_5"],
                       services_involved=["barnehage"], status="under_behandling",
                       reported_at="2026-03-05T08:00:00+01:00",
                       reporting_unit={"agency": "barnehage", "unit": "Søreide barnehage", "unit_code": "BH-17"},
                       title="Fall i sklia", description="Gutten slo hodet. Foreldre varslet."),
        "unknown": report("F-5", reported_category="Noe helt annet", target_groups=[], services_involved=[],
                          reported_at="2026-03-20T08:00:00+01:00", occurred_at=None, reporting_unit=None,
                          title="Skriver virker ikke", description="Skriveren på Ørnebakken står."),
        "nav": report("F-6", reported_category="Relasjon/samarbeid",
                      target_groups=["ungdom_13_17", "foreldre_og_familie"],
                      services_involved=["nav", "barnevern"], reported_at="2026-04-01T10:00:00+02:00",
                      occurred_at="2025-12-24T10:00:00+01:00",
                      reporting_unit="Etat for sosiale tjenester – NAV Årstad",
                      title="Ingen fra NAV i ansvarsgruppemøtet"),
        "adult": report("F-7", reported_category="Brudd på tjenesteavtale", target_groups=["voksne"],
                        services_involved=["nav", "psykisk_helse_rus"], reported_at="2026-04-02T10:00:00+02:00",
                        reporting_unit="Etat for psykisk helse og rustjenester – Rusteam Sentrum",
                        title="Vedtak ikke videresendt"),
    }
    ids = {}
    for name, body in items.items():
        answer = client.post(URL, json={**body, "source_system": "filtertest"})
        assert answer.status_code == 201, answer.text
        ids[name] = answer.json()["id"]
    return ids


def names(client: TestClient, corpus: dict[str, int], **params: Any) -> set[str]:
    """The corpus reports a list query returns (all pages)."""
    by_id = {v: k for k, v in corpus.items()}
    found: set[str] = set()
    cursor = None
    while True:
        query = {**params, "limit": 3, **({"cursor": cursor} if cursor else {})}
        answer = client.get(URL, params=query)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        found |= {by_id[item["id"]] for item in page["items"] if item["id"] in by_id}
        cursor = page["next_cursor"]
        if cursor is None:
            return found


def test_get_by_id_and_by_external_id(client: TestClient, corpus: dict[str, int]) -> None:
    one = client.get(f"{URL}/{corpus['health']}")
    by_external = client.get(f"{URL}/by-external/filtertest/F-2")
    assert one.status_code == by_external.status_code == 200
    assert one.json() == by_external.json()
    assert one.json()["description"] == "Ingen fødselsmelding fra sykehuset."
    assert one.headers["cache-control"] == "no-store"


def test_unknown_ids_are_404(client: TestClient) -> None:
    assert client.get(f"{URL}/999999999").status_code == 404
    assert client.get(f"{URL}/by-external/filtertest/NOPE").json()["error"] == "not_found"
    assert client.get(f"{URL}/abc").status_code == 422


def test_list_shows_no_description(client: TestClient, corpus: dict[str, int]) -> None:
    items = client.get(URL, params={"limit": 500}).json()["items"]
    assert items and all("description" not in item for item in items)


@pytest.mark.parametrize(("params", "expected"), [
    ({"category": "kommunikasjon_og_samhandling"}, {"school", "health", "elderly", "nav", "adult"}),
    ({"category": "samhandling_barn_unge"}, {"school"}),
    ({"category": "pasient_brukerskade"}, {"fall"}),
    ({"target_group": ["barn_1_5", "eldre"]}, {"fall", "elderly"}),
    ({"children_and_youth": "true"}, {"school", "health", "fall", "nav"}),
    ({"children_and_youth": "false"}, {"elderly", "unknown", "adult"}),
    ({"service": ["sykehus"]}, {"health", "elderly"}),
    ({"service": ["nav", "barnehage"]}, {"nav", "adult", "fall"}),
    ({"department": "BBSM"}, {"health", "nav", "adult"}),
    ({"agency": "skole"}, {"school"}),
    ({"unit": "søreide BARNEHAGE"}, {"fall"}),
    ({"unit": "BH-17"}, {"fall"}),
    ({"status": ["lukket", "under_behandling"]}, {"school", "fall"}),
    ({"status": [" Lukket "]}, {"school"}),  # normalised as ingest stores it
    ({"reported_from": "2026-02-01", "reported_to": "2026-02-28"}, {"health", "elderly"}),
    ({"reported_to": "2026-01-31"}, {"school"}),
    ({"reported_from": "2026-04-02"}, {"adult"}),
    ({"q": "EPIKRISE"}, {"health"}),
    ({"q": "ørnebakken skriveren"}, {"unknown"}),
    ({"q": "ikke"}, {"health", "unknown", "adult"}),
    ({"q": "100%"}, set()),
])
def test_each_filter(client: TestClient, corpus: dict[str, int], params: dict[str, Any], expected: set[str]) -> None:
    assert names(client, corpus, **params) == expected


@pytest.mark.parametrize(("params", "expected"), [
    ({"children_and_youth": "true", "service": ["sykehus"]}, {"health"}),
    ({"category": "kommunikasjon_og_samhandling", "department": "BBSM", "target_group": ["voksne"]}, {"adult"}),
    ({"service": ["nav"], "reported_from": "2026-04-02", "q": "vedtak"}, {"adult"}),
    ({"children_and_youth": "true", "status": ["registrert"], "reported_to": "2026-03-31"}, {"health"}),
    ({"agency": "skole", "service": ["nav"]}, set()),
])
def test_filters_combine_with_and(client: TestClient, corpus: dict[str, int], params: dict[str, Any],
                                  expected: set[str]) -> None:
    assert names(client, corpus, **params) == expected


def test_unknown_filter_codes_are_422_naming_the_filter(client: TestClient) -> None:
    answer = client.get(URL, params={"service": "brannvesenet", "category": "x", "department": "Z"})
    assert answer.status_code == 422
    assert {f["field"] for f in answer.json()["fields"]} == {"service", "category", "department"}
    assert client.get(URL, params={"limit": 501}).status_code == 422
    assert client.get(URL, params={"reported_from": "2026-05-01", "reported_to": "2026-04-01"}).status_code == 422
    assert client.get(URL, params={"tagret_group": "barn_1_5"}).json()["fields"][0]["field"] == "tagret_group"


def test_empty_filter_values_are_422_naming_the_filter(client: TestClient) -> None:
    # `?status=` is a mistake to name, not a filter that silently matches nothing.
    answer = client.get(URL, params={"status": "", "service": " ", "target_group": "barn_1_5"})
    assert answer.status_code == 422
    assert {f["field"] for f in answer.json()["fields"]} == {"status[0]", "service[0]"}  # the value at fault
    assert client.get("/api/v1/stats/collaboration-matrix", params={"status": ""}).status_code == 422


def test_sort_by_occurrence_uses_reporting_time_when_unknown(client: TestClient, corpus: dict[str, int]) -> None:
    items = client.get(URL, params={"sort": "occurred_at", "order": "asc", "limit": 500}).json()["items"]
    ours = [i["external_id"] for i in items if i["source_system"] == "filtertest"]
    assert ours[0] == "F-6"  # occurred 2025-12-24, reported last
    assert ours.index("F-5") > ours.index("F-4")  # F-5 has no occurrence time: sorted by its reporting time


def test_bad_cursor_is_422(client: TestClient, corpus: dict[str, int]) -> None:
    cursor = client.get(URL, params={"limit": 1}).json()["next_cursor"]
    assert client.get(URL, params={"cursor": "not-a-cursor"}).status_code == 422
    other_order = client.get(URL, params={"cursor": cursor, "order": "asc"})
    assert other_order.status_code == 422
    assert other_order.json()["fields"][0]["field"] == "cursor"


@pytest.mark.parametrize("sort", ["reported_at", "occurred_at"])
@pytest.mark.parametrize("order", ["desc", "asc"])
def test_pagination_stays_correct_while_reports_arrive(client: TestClient, sort: str, order: str) -> None:
    # Many reports share a timestamp, so the id tie-break is what keeps pages apart.
    before = [report(f"P-{i}", source_system="pagetest", reported_at=f"2026-05-{1 + i % 5:02d}T12:00:00+02:00")
              for i in range(23)]
    assert client.post(f"{URL}/batch", json={"reports": before}).json()["counts"] == {"created": 23}
    seen: list[str] = []
    cursor = None
    arrivals = 0
    while True:
        params: dict[str, Any] = {"limit": 4, "sort": sort, "order": order, "q": "helsesykepleier"}
        page = client.get(URL, params={**params, **({"cursor": cursor} if cursor else {})}).json()
        seen += [i["external_id"] for i in page["items"] if i["source_system"] == "pagetest"]
        # New reports arrive between pages, at both ends of the time range and in its middle.
        for when in ("2026-04-01", "2026-05-03", "2026-06-01"):
            arrivals += 1
            client.post(URL, json=report(f"NEWP-{arrivals}", source_system="pagetest",
                                         reported_at=f"{when}T12:00:00+02:00"))
        cursor = page["next_cursor"]
        if cursor is None:
            break
    original = [s for s in seen if s.startswith("P-")]
    assert sorted(original) == sorted(b["external_id"] for b in before)  # every one, once
    assert len(seen) == len(set(seen))  # nothing twice, new arrivals included
