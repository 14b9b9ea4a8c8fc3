"""review: decisions are named for what they mean (is_case, not_case, correct)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06

`confirm` and `reject` said what an adviser did to a flag, but a decision can be made on any report (an
audit-sample draw, a report reached by its id), where "confirm" left open what was confirmed. Stored
decisions are renamed: confirm -> is_case, reject -> not_case (correct stays). The API still accepts the old
names as aliases. The review triggers of migration 0008 copy the new names into `estimate_basis`; which
decisions count as a case is decided by `app.review.labels.is_case`, not by the database.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0010'
down_revision: str | Sequence[str] | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RENAMES = (("confirm", "is_case"), ("reject", "not_case"))


def upgrade() -> None:
    for old, new in RENAMES:
        op.execute(f"UPDATE review SET decision = '{new}' WHERE decision = '{old}'")


def downgrade() -> None:
    for old, new in RENAMES:
        op.execute(f"UPDATE review SET decision = '{old}' WHERE decision = '{new}'")
