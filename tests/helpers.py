"""Builders of payloads as the quality system sends them."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import pytest

from classifier import Prediction, ReportText, TrainedModel

_numbers = itertools.count(1)


def report(external_id: str | None = None, **overrides: Any) -> dict[str, Any]:
    """A valid delivery; override any field."""
    payload: dict[str, Any] = {
        "external_id": external_id or f"BK-{next(_numbers):06d}",
        "title": "Skolen ga ikke beskjed til helsesykepleier",
        "description": "Ny elev startet i 3. klasse uten at skolehelsetjenesten fikk beskjed.",
        "reported_category": "Kommunikasjon og samhandling",
        "occurred_at": "2026-03-02T09:15:00+01:00",
        "reported_at": "2026-03-03T10:00:00+01:00",
        "reporting_unit": {"agency": "Etat for skole", "unit": "Garnes skole"},
        "status": "registrert",
        "target_groups": ["barn_6_12"],
        "services_involved": ["skole", "skolehelsetjeneste"],
        "related_external_ids": [],
        "source_version": 1,
    }
    payload.update(overrides)
    return payload


POISON = "POISON"  # a word that makes the classifier fail once inject_classifier_fault is in place


def inject_classifier_fault(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the real model's predict raise on any batch holding a report whose description has POISON,
    as a classifier bug on some rare input would (fault injection, not a stand-in for the classifier)."""
    real_predict = TrainedModel.predict

    def predict(self: TrainedModel, reports: Sequence[ReportText], *args: Any, **kwargs: Any) -> list[Prediction]:
        if any(POISON in r.description for r in reports):
            raise ValueError("injected classifier fault")
        return real_predict(self, reports, *args, **kwargs)

    monkeypatch.setattr(TrainedModel, "predict", predict)


def delivered(client: Any, body: dict[str, Any]) -> dict[str, Any]:
    """Deliver one report and read back what is stored (the client must be an adviser or admin), with the
    delivery's outcome: an ingest answer carries no stored text or labels, so tests of them read them."""
    answer = client.post("/api/v1/reports", json=body)
    assert answer.status_code in (200, 201), answer.text
    stored = client.get(f"/api/v1/reports/{answer.json()['id']}")
    assert stored.status_code == 200, stored.text
    return {**stored.json(), "outcome": answer.json()["outcome"]}
