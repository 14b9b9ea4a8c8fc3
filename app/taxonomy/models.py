"""Tables of the taxonomy: one row per code of every kind, and extra labels that map to categories."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, Enum, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow


class CodeKind(enum.StrEnum):
    """What a taxonomy code classifies."""

    CATEGORY = "category"
    TARGET_GROUP = "target_group"
    SERVICE = "service"
    DEPARTMENT = "department"
    AGENCY = "agency"


class TaxonomyCode(Base):
    """One code of the taxonomy; retired codes stay so that old reports keep their meaning."""

    __tablename__ = "taxonomy_code"
    __table_args__ = (CheckConstraint("code <> ''", name="code_not_empty"),)

    kind: Mapped[CodeKind] = mapped_column(
        Enum(CodeKind, name="code_kind", native_enum=False, length=20,
             values_callable=lambda kinds: [k.value for k in kinds]),
        primary_key=True,
    )
    code: Mapped[str] = mapped_column(String(80), primary_key=True)
    label: Mapped[str] = mapped_column(String(200))
    # Category -> parent category; agency -> department.
    parent_code: Mapped[str | None] = mapped_column(String(80))
    children_and_youth: Mapped[bool] = mapped_column(Boolean, default=False)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    replaced_by: Mapped[str | None] = mapped_column(String(80))


class CategoryAlias(Base):
    """A further label the quality system may send for a category (besides its code and label)."""

    __tablename__ = "category_alias"

    alias_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    category_code: Mapped[str] = mapped_column(String(80))
