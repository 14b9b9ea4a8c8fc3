"""Reading the installation's cell-key secret (migration 0010)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.privacy.cellkey import CellKey
from app.privacy.models import CellKeySecret


def load_cell_key(session: Session) -> CellKey:
    """The installation's record-key function; a database without the secret is not migrated."""
    secret = session.scalar(select(CellKeySecret.secret).where(CellKeySecret.id == 1))
    if secret is None:
        raise RuntimeError("cell_key_secret is empty: run `avvik migrate`")
    return CellKey.from_secret(secret)
