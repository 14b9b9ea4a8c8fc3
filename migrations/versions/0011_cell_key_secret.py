"""statistics: the per-installation secret of the cell-key perturbation

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06

Dashboards get counts perturbed by the cell-key method (app.privacy.cellkey): each report's record key is a
keyed function of its id. The key comes from this one-row table, filled here with 256 random bits, so that
every installation has its own and every server process of one installation agrees (the same cell gets the
same noise on every replica, so asking several replicas averages nothing away).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0011'
down_revision: str | Sequence[str] | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    table = op.create_table(
        "cell_key_secret",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("secret", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cell_key_secret")),
    )
    op.bulk_insert(table, [{"id": 1, "secret": secrets.token_hex(32)}])


def downgrade() -> None:
    op.drop_table("cell_key_secret")
