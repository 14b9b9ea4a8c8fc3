"""API shapes of the taxonomy."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from app.fields import NoNul
from app.taxonomy.models import CodeKind

CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_]*$"
# Departments are upper-case abbreviations (BBSM); every other kind is lower-case snake_case.
KIND_CODE_PATTERNS = {CodeKind.DEPARTMENT: r"^[A-Z][A-Z0-9_]*$"}
LOWER_CODE_PATTERN = r"^[a-z0-9][a-z0-9_]*$"


class CodeOut(BaseModel):
    """A code with its Norwegian label and whether it is retired."""

    model_config = ConfigDict(from_attributes=True)

    code: str
    label: str
    retired: bool
    replaced_by: str | None = None


class CategoryNode(CodeOut):
    """A category and its subcategories."""

    children: list[CategoryNode] = []


class TargetGroupOut(CodeOut):
    """A target group; children_and_youth marks the seven groups that count as children and youth."""

    children_and_youth: bool


class AgencyOut(CodeOut):
    """An agency (etat) of a department."""

    department: str | None


class DepartmentOut(CodeOut):
    """A city-government department (byrådsavdeling) and its agencies."""

    agencies: list[AgencyOut] = []


class TaxonomyOut(BaseModel):
    """The whole taxonomy; version changes whenever a code is added or retired."""

    version: datetime | None
    categories: list[CategoryNode]
    target_groups: list[TargetGroupOut]
    services: list[CodeOut]
    departments: list[DepartmentOut]


class CodeIn(NoNul):
    """A new code."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=80, pattern=CODE_PATTERN)
    label: str = Field(min_length=1, max_length=200)
    parent: str | None = Field(default=None, max_length=80,
                               description="Parent category, or the department of an agency")
    children_and_youth: bool = Field(default=False, description="Target groups only")


class RetireIn(NoNul):
    """Retire a code, optionally naming the code to use instead."""

    model_config = ConfigDict(extra="forbid")

    replaced_by: str | None = Field(default=None, max_length=80)


class CodeChange(BaseModel):
    """The result of adding or retiring a code."""

    kind: CodeKind
    code: str
    label: str
    parent: str | None
    retired: bool
    replaced_by: str | None
