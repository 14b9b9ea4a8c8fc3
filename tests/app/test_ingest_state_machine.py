"""Property: whatever order, duplication and interleaving deliveries arrive in, the stored state of
each report is its highest delivered version."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from tests.helpers import report

STATUSES = ["registrert", "under_behandling", "tiltak", "lukket"]
GROUPS = ["barn_1_5", "barn_6_12", "ungdom_13_17", "foreldre_og_familie", "voksne"]


def delivery(source: str, external_id: str, version: int) -> dict[str, Any]:
    """The content of a version is a function of the version, as in the quality system."""
    return report(external_id, source_system=source, source_version=version,
                  status=STATUSES[version % len(STATUSES)], title=f"Versjon {version}",
                  target_groups=sorted({GROUPS[version % 5], GROUPS[(version * 3) % 5]}))


def run_machine(client: TestClient) -> None:
    class Deliveries(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.source = f"sm-{uuid.uuid4().hex[:8]}"
            self.highest: dict[str, int] = {}

        @rule(case=st.sampled_from(["A", "B", "C"]), version=st.integers(0, 12))
        def deliver(self, case: str, version: int) -> None:
            answer = client.post("/api/v1/reports", json=delivery(self.source, case, version))
            assert answer.status_code in (200, 201), answer.text
            expected = ("created" if case not in self.highest
                        else "updated" if version > self.highest[case]
                        else "unchanged" if version == self.highest[case] else "stale")
            assert answer.json()["outcome"] == expected
            self.highest[case] = max(version, self.highest.get(case, version))

        @rule(items=st.lists(st.tuples(st.sampled_from(["A", "B", "C"]), st.integers(0, 12)), min_size=1,
                             max_size=8))
        def deliver_batch(self, items: list[tuple[str, int]]) -> None:
            answer = client.post("/api/v1/reports/batch",
                                 json={"reports": [delivery(self.source, c, v) for c, v in items]})
            assert answer.status_code == 200
            assert all(r["outcome"] != "invalid" for r in answer.json()["results"])
            for case, version in items:
                self.highest[case] = max(version, self.highest.get(case, version))

        @invariant()
        def stored_state_is_the_highest_version(self) -> None:
            for case, version in self.highest.items():
                stored = client.get(f"/api/v1/reports/by-external/{self.source}/{case}").json()
                expected = delivery(self.source, case, version)
                assert stored["source_version"] == str(version)
                assert (stored["title"], stored["status"], stored["target_groups"]) == \
                    (expected["title"], expected["status"], expected["target_groups"])

    run_state_machine_as_test(Deliveries, settings=settings(
        max_examples=30, stateful_step_count=15, deadline=None, derandomize=True,
        suppress_health_check=[HealthCheck.too_slow]))


def test_stored_state_equals_the_highest_delivered_version(client: TestClient) -> None:
    run_machine(client)
