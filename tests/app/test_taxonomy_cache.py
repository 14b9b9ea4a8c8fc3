"""The taxonomy snapshot is built once and reused, yet every change is seen by the next request.

A change may come from this process, another worker, the CLI, or be rolled back: the snapshot is keyed
by what the database holds as the transaction sees it, so each of these is seen (or forgotten) at once.
"""

from __future__ import annotations

from sqlalchemy import insert, update
from sqlalchemy.orm import Session

from app.db import utcnow
from app.taxonomy.models import CategoryAlias, CodeKind, TaxonomyCode
from app.taxonomy.service import load_taxonomy, normalise_label


def test_an_unchanged_taxonomy_is_not_rebuilt(session: Session) -> None:
    assert load_taxonomy(session) is load_taxonomy(session)


def test_changes_written_by_anyone_are_seen_by_the_next_load(session: Session) -> None:
    before = load_taxonomy(session)
    assert "ungdomsklubb" not in before.codes[CodeKind.SERVICE]
    # Written with plain SQL, as another process (a second worker, `avvik taxonomy add`) would.
    session.execute(insert(TaxonomyCode).values(kind=CodeKind.SERVICE, code="ungdomsklubb", label="Ungdomsklubb",
                                                children_and_youth=False, added_at=utcnow()))
    added = load_taxonomy(session)
    assert "ungdomsklubb" in added.codes[CodeKind.SERVICE]
    assert added.resolve_codes(CodeKind.SERVICE, ["ungdomsklubb"], "services_involved") == (["ungdomsklubb"], [])

    session.execute(update(TaxonomyCode).where(TaxonomyCode.code == "ungdomsklubb")
                    .values(retired_at=utcnow(), replaced_by="fritid_kultur_idrett"))
    retired = load_taxonomy(session)
    assert "use 'fritid_kultur_idrett'" in retired.resolve_codes(CodeKind.SERVICE, ["ungdomsklubb"], "s")[1][0].reason
    # Only the replacement changes: still seen.
    session.execute(update(TaxonomyCode).where(TaxonomyCode.code == "ungdomsklubb").values(replaced_by="annet"))
    assert "use 'annet'" in load_taxonomy(session).resolve_codes(CodeKind.SERVICE, ["ungdomsklubb"], "s")[1][0].reason

    label = "Samarbeid om ungdom"
    assert load_taxonomy(session).map_category(label) is None
    session.execute(insert(CategoryAlias).values(alias_key=normalise_label(label),
                                                 category_code="samhandling_barn_unge"))
    assert load_taxonomy(session).map_category(label) == "samhandling_barn_unge"


def test_a_rolled_back_change_is_forgotten(session: Session) -> None:
    savepoint = session.begin_nested()
    session.execute(update(TaxonomyCode).where(TaxonomyCode.kind == CodeKind.CATEGORY,
                                               TaxonomyCode.code == "samhandling_barn_unge")
                    .values(label="Samhandling om barn"))
    assert load_taxonomy(session).map_category("Samhandling om barn") == "samhandling_barn_unge"
    savepoint.rollback()
    after = load_taxonomy(session)
    assert after.map_category("Samhandling om barn") is None
    assert after.map_category("Samhandling barn og unge") == "samhandling_barn_unge"
