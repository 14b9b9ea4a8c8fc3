"""The content hash never changes for the same content: stored hashes decide `unchanged` versus `conflict`."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from app.ingest.mapping import canonical_json, content_hash
from app.ingest.schemas import ReportIn
from tests.helpers import report

# Any character a JSON string can carry (no lone surrogates: validation refuses them), control characters,
# quotes, backslashes, DEL, line and paragraph separators and characters outside the BMP included.
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
LEAF = st.one_of(st.none(), TEXT)
PAYLOAD = st.dictionaries(TEXT, st.one_of(LEAF, st.lists(TEXT, max_size=4),
                                          st.dictionaries(TEXT, LEAF, max_size=4)), max_size=14)


def stored_form(value: Any) -> bytes:
    """How hashed payloads were serialised when the hashes now in databases were made."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@settings(max_examples=3000, deadline=None)
@given(PAYLOAD)
def test_canonical_json_is_byte_for_byte_the_stored_form(payload: dict[str, Any]) -> None:
    assert canonical_json(payload) == stored_form(payload)


def test_content_hash_of_a_known_delivery_is_pinned() -> None:
    # Digests made by the original implementation (json.dumps); a change here re-labels every stored
    # report's content, and replays of unchanged reports would be refused as conflicts.
    item = ReportIn.model_validate(report(
        "BK-HASH-1", description="Æ\nø\t\"x\" 😀 \x01", target_groups=["barn_6_12", "barn_1_5", "barn_6_12"],
        reporting_unit={"unit": "Garnes skole", "agency": "Etat for skole"}, related_external_ids=["B", "A"]))
    assert content_hash(item, item.title, item.description) == \
        "f168ca4b4d574a50eb2369f4133fcd2d2115e8a5ee825d2182450086cc05972d"
    text_unit = ReportIn.model_validate(report("BK-HASH-2", reporting_unit="Etat for skole – Garnes skole",
                                               occurred_at=None, source_version="2026-03-03T10:00:00"))
    assert content_hash(text_unit, text_unit.title, text_unit.description) == \
        "f9661276b03fdf98b5979f1d0bfa7af33bd047e989d09dd91eaa89d04112a8eb"
