"""The per-installation secret of the cell-key method (app.privacy.cellkey)."""

from __future__ import annotations

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class CellKeySecret(Base):
    """One row, written by migration 0010 with 256 random bits: every server process of an installation
    derives the same record keys from it, so replicas publish the same noise for the same cell."""

    __tablename__ = "cell_key_secret"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    secret: Mapped[str] = mapped_column(String(64))
