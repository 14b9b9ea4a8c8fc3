"""The content hash never changes for the same content: stored hashes decide `unchanged` versus `conflict`."""

from __future__ import annotations

from app.ingest.mapping import content_hash
from app.ingest.schemas import ReportIn
from tests.helpers import report


def test_content_hash_of_a_known_delivery_is_pinned() -> None:
    # Digests of the hashing as it was when the stored hashes were made. If this changes, every stored
    # report's content looks different, and a replay of an unchanged report is refused as a conflict.
    item = ReportIn.model_validate(report(
        "BK-HASH-1", description="Æ\nø\t\"x\" 😀 \x01", target_groups=["barn_6_12", "barn_1_5", "barn_6_12"],
        reporting_unit={"unit": "Garnes skole", "agency": "Etat for skole"}, related_external_ids=["B", "A"]))
    assert content_hash(item) == \
        "f168ca4b4d574a50eb2369f4133fcd2d2115e8a5ee825d2182450086cc05972d"
    text_unit = ReportIn.model_validate(report("BK-HASH-2", reporting_unit="Etat for skole – Garnes skole",
                                               occurred_at=None, source_version="2026-03-03T10:00:00"))
    assert content_hash(text_unit) == \
        "f9661276b03fdf98b5979f1d0bfa7af33bd047e989d09dd91eaa89d04112a8eb"
