"""Who is calling: roles and the departments they may see."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Role(enum.StrEnum):
    """What a caller may do; the names in tokens and keys are configurable (Settings.role_*)."""

    INTEGRATION = "integration"  # post and update reports
    ADVISER = "adviser"  # read reports with free text, review, export; for granted departments
    DASHBOARD = "dashboard"  # aggregated statistics only
    ADMIN = "admin"  # everything, plus taxonomy and model management


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    kind: str  # "api_key" or "user"
    subject: str  # key name, or the user's object id
    tenant: str | None
    roles: frozenset[Role]
    departments: frozenset[str] | None  # None: every department

    @property
    def actor(self) -> str:
        """How the audit log names the caller."""
        return f"key:{self.subject}" if self.kind == "api_key" else f"user:{self.subject}@{self.tenant}"
