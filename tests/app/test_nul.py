"""A NUL character (U+0000) cannot be stored by PostgreSQL: it is removed from a delivered report's text
(the case must not be lost over an invisible character) and refused with 422 naming the field elsewhere."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.helpers import report


def test_a_report_with_nul_characters_is_stored_without_them(client: TestClient) -> None:
    sent = report("NUL-1", title="Ingen\u0000 beskjed", description="Skolen\u0000 varslet ikke.",
                  reporting_unit={"unit": "Garnes\u0000 skole"}, related_external_ids=["NUL-2\u0000"])
    answer = client.post("/api/v1/reports", json=sent)
    assert answer.status_code == 201, answer.text
    stored = client.get(f"/api/v1/reports/{answer.json()['id']}").json()
    assert stored["title"] == "Ingen beskjed" and stored["description"] == "Skolen varslet ikke."
    assert stored["reporting_unit"]["unit"] == "Garnes skole", stored["reporting_unit"]
    assert stored["related_external_ids"] == ["NUL-2"]
    batch = client.post("/api/v1/reports/batch", json={"reports": [
        report("NUL-3", title="\u0000"), report("NUL-4", description="tekst\u0000")]}).json()
    # A title of nothing but a NUL is an empty title once the NUL is gone: invalid, and says so.
    assert [r["outcome"] for r in batch["results"]] == ["invalid", "created"]
    assert batch["results"][0]["errors"][0]["field"].endswith("title")
    again = client.post("/api/v1/reports", json=sent)
    assert again.status_code == 200 and again.json()["outcome"] == "unchanged"  # the same delivery, once


def test_nul_in_a_query_parameter_or_the_path_is_a_422_naming_it(client: TestClient) -> None:
    answer = client.get("/api/v1/reports", params={"q": "a\u0000b", "status": "registrert"})
    assert answer.status_code == 422
    assert [f["field"] for f in answer.json()["fields"]] == ["q"]
    answer = client.get("/api/v1/reports/by-external/bkkvalitet/AB%00C")
    assert answer.status_code == 422 and answer.json()["fields"][0]["field"] == "path"
    assert client.get("/api/v1/stats/counts", params={"unit": "\u0000"}).status_code == 422


def test_nul_in_a_json_body_is_a_422_naming_the_field(client: TestClient) -> None:
    answer = client.post("/api/v1/taxonomy/service", json={"code": "ny_tjeneste", "label": "Ny\u0000"})
    assert answer.status_code == 422
    assert answer.json()["fields"][0]["field"].endswith("label")
    report_id = client.post("/api/v1/reports", json=report("NUL-5")).json()["id"]
    answer = client.post(f"/api/v1/reports/{report_id}/review", json={"decision": "confirm", "comment": "ok\u0000"})
    assert answer.status_code == 422
    assert answer.json()["fields"][0]["field"].endswith("comment")
    answer = client.post(f"/api/v1/reports/{report_id}/review",
                         json={"decision": "correct", "target_groups": ["barn_6_12\u0000"]})
    assert answer.status_code == 422
