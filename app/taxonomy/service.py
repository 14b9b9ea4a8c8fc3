"""Taxonomy rules: mapping reporter labels to codes, validating codes, adding and retiring codes."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.errors import Conflict, FieldError, InvalidInput, NotFound
from app.taxonomy.models import CategoryAlias, CodeKind, TaxonomyCode
from app.taxonomy.schemas import (
    AgencyOut,
    CategoryNode,
    CodeChange,
    CodeIn,
    CodeOut,
    DepartmentOut,
    TargetGroupOut,
    TaxonomyOut,
)

# "Parent / Child", "Parent – Child" or "Parent > Child": a path the quality system may send.
_PATH_SEPARATORS = re.compile(r"\s+(?:>|»|–|—|-|/)\s+")


def normalise_label(label: str) -> str:
    """A key that ignores case, spacing, punctuation spacing and 'og'/'&' variants."""
    text = unicodedata.normalize("NFC", label).casefold()
    text = text.replace("&", " og ").replace("+", " og ")
    text = re.sub(r"\s*([/(),.\-])\s*", r"\1", text)
    text = re.sub(r"[()]", "", text)
    return re.sub(r"\s+", " ", text).strip(" .")


@dataclass(frozen=True)
class Taxonomy:
    """A snapshot of the taxonomy, loaded once per request, answering lookups without I/O."""

    codes: dict[CodeKind, dict[str, TaxonomyCode]]
    aliases: dict[str, str] = field(default_factory=dict)

    def active(self, kind: CodeKind) -> list[str]:
        """The codes of a kind that may be used on new reports."""
        return sorted(c for c, row in self.codes[kind].items() if row.retired_at is None)

    def check_codes(
        self, kind: CodeKind, codes: Iterable[str], location: str, already_present: Iterable[str] = ()
    ) -> list[FieldError]:
        """Problems with codes sent on a report: unknown ones, and retired ones not already on it."""
        known = self.codes[kind]
        keep = set(already_present)
        problems = []
        for index, code in enumerate(codes):
            row = known.get(code)
            where = f"{location}[{index}]"
            if row is None:
                problems.append(FieldError(
                    field=where,
                    reason=f"unknown {kind.value} code '{code}'; valid codes: {', '.join(self.active(kind))}",
                ))
            elif row.retired_at is not None and code not in keep:
                instead = f"; use '{row.replaced_by}' instead" if row.replaced_by else ""
                problems.append(FieldError(field=where, reason=f"{kind.value} code '{code}' is retired{instead}"))
        return problems

    def map_category(self, label: str | None) -> str | None:
        """The category code a reporter's label or code stands for, or None when unknown."""
        if not label or not label.strip():
            return None
        categories = self.codes[CodeKind.CATEGORY]
        code = self._match_category(label)
        if code is None:
            return None
        row = categories[code]
        if row.retired_at is not None:
            return row.replaced_by if row.replaced_by in categories else None
        return code

    def _match_category(self, label: str) -> str | None:
        categories = self.codes[CodeKind.CATEGORY]
        stripped = label.strip()
        if stripped in categories:
            return stripped
        key = normalise_label(stripped)
        if key in self.aliases:
            return self.aliases[key]
        by_label = self._labels_by_key(parent=None)
        if key in by_label:
            return by_label[key]
        parts = _PATH_SEPARATORS.split(stripped)
        if len(parts) == 2:
            parent = self._labels_by_key(parent=None).get(normalise_label(parts[0]))
            if parent is not None:
                return self._labels_by_key(parent=parent).get(normalise_label(parts[1]))
        return self._labels_by_key(parent=...).get(key)

    def _labels_by_key(self, parent: str | type[Ellipsis] | None) -> dict[str, str]:
        """Label keys of top-level categories, of one parent's children, or (...) of all subcategories."""
        rows = self.codes[CodeKind.CATEGORY].values()
        if parent is ...:
            chosen = [r for r in rows if r.parent_code is not None]
        else:
            chosen = [r for r in rows if r.parent_code == parent]
        return {normalise_label(r.label): r.code for r in sorted(chosen, key=lambda r: r.code)}

    def category_with_descendants(self, code: str) -> set[str]:
        """A category code and every code below it."""
        rows = self.codes[CodeKind.CATEGORY]
        result, frontier = {code}, [code]
        while frontier:
            parent = frontier.pop()
            for child in (c for c, r in rows.items() if r.parent_code == parent and c not in result):
                result.add(child)
                frontier.append(child)
        return result

    def children_and_youth_groups(self) -> set[str]:
        """The target groups that count as children and youth."""
        return {c for c, r in self.codes[CodeKind.TARGET_GROUP].items() if r.children_and_youth}

    def find_department(self, text: str | None) -> str | None:
        """A department code from its code or label."""
        return self._find(CodeKind.DEPARTMENT, text)

    def find_agency(self, text: str | None) -> str | None:
        """An agency code from its code or label."""
        return self._find(CodeKind.AGENCY, text)

    def department_of(self, agency: str | None) -> str | None:
        """The department an agency belongs to."""
        row = self.codes[CodeKind.AGENCY].get(agency or "")
        return row.parent_code if row else None

    def _find(self, kind: CodeKind, text: str | None) -> str | None:
        if not text or not text.strip():
            return None
        rows = self.codes[kind]
        stripped = text.strip()
        if stripped in rows:
            return stripped
        key = normalise_label(stripped)
        for code, row in rows.items():
            if normalise_label(row.label) == key or code.casefold() == key:
                return code
        return None


def load_taxonomy(session: Session) -> Taxonomy:
    """Read the whole taxonomy (a few hundred rows) into a snapshot."""
    codes: dict[CodeKind, dict[str, TaxonomyCode]] = {kind: {} for kind in CodeKind}
    for row in session.scalars(select(TaxonomyCode)):
        codes[row.kind][row.code] = row
    aliases = {a.alias_key: a.category_code for a in session.scalars(select(CategoryAlias))}
    return Taxonomy(codes=codes, aliases=aliases)


def taxonomy_tree(session: Session) -> TaxonomyOut:
    """The taxonomy as the API shows it: categories as a tree, departments with their agencies."""
    taxonomy = load_taxonomy(session)

    def out(row: TaxonomyCode) -> dict[str, object]:
        return {"code": row.code, "label": row.label, "retired": row.retired_at is not None,
                "replaced_by": row.replaced_by}

    categories = taxonomy.codes[CodeKind.CATEGORY]

    def node(row: TaxonomyCode) -> CategoryNode:
        children = sorted((r for r in categories.values() if r.parent_code == row.code), key=lambda r: r.code)
        return CategoryNode(**out(row), children=[node(c) for c in children])

    roots = sorted((r for r in categories.values() if r.parent_code not in categories), key=lambda r: r.code)
    agencies = taxonomy.codes[CodeKind.AGENCY].values()
    departments = [
        DepartmentOut(
            **out(d),
            agencies=[AgencyOut(**out(a), department=a.parent_code)
                      for a in sorted(agencies, key=lambda a: a.code) if a.parent_code == d.code],
        )
        for d in sorted(taxonomy.codes[CodeKind.DEPARTMENT].values(), key=lambda r: r.code)
    ]
    version = session.scalar(
        select(func.max(func.coalesce(TaxonomyCode.retired_at, TaxonomyCode.added_at)))
    )
    return TaxonomyOut(
        version=_as_utc(version),
        categories=[node(r) for r in roots],
        target_groups=[TargetGroupOut(**out(r), children_and_youth=r.children_and_youth)
                       for r in sorted(taxonomy.codes[CodeKind.TARGET_GROUP].values(), key=lambda r: r.code)],
        services=[CodeOut(**out(r)) for r in sorted(taxonomy.codes[CodeKind.SERVICE].values(), key=lambda r: r.code)],
        departments=departments,
    )


def _as_utc(value: datetime | str | None) -> datetime | None:
    # func.max over a TypeDecorator column loses the type on SQLite and comes back as text.
    if value is None or isinstance(value, datetime):
        return value
    from datetime import UTC

    return datetime.fromisoformat(value).replace(tzinfo=UTC)


_PARENT_KIND = {CodeKind.CATEGORY: CodeKind.CATEGORY, CodeKind.AGENCY: CodeKind.DEPARTMENT}


def add_code(session: Session, kind: CodeKind, new: CodeIn) -> CodeChange:
    """Add a code; 409 when it exists, 422 when its parent is unknown or not allowed for the kind."""
    if session.get(TaxonomyCode, (kind, new.code)) is not None:
        raise Conflict(f"{kind.value} code '{new.code}' exists", [FieldError(field="code", reason="already exists")])
    if new.parent is not None:
        parent_kind = _PARENT_KIND.get(kind)
        if parent_kind is None:
            raise InvalidInput("this kind of code has no parent",
                               [FieldError(field="parent", reason=f"{kind.value} codes have no parent")])
        if session.get(TaxonomyCode, (parent_kind, new.parent)) is None:
            raise InvalidInput(f"unknown parent '{new.parent}'",
                               [FieldError(field="parent", reason=f"unknown {parent_kind.value} code '{new.parent}'")])
    elif kind is CodeKind.AGENCY:
        raise InvalidInput("an agency needs its department",
                           [FieldError(field="parent", reason="required for agencies")])
    if new.children_and_youth and kind is not CodeKind.TARGET_GROUP:
        raise InvalidInput("only target groups count as children and youth",
                           [FieldError(field="children_and_youth", reason="only for target groups")])
    row = TaxonomyCode(kind=kind, code=new.code, label=new.label, parent_code=new.parent,
                       children_and_youth=new.children_and_youth, added_at=utcnow())
    session.add(row)
    session.flush()
    return _change(row)


def retire_code(session: Session, kind: CodeKind, code: str, replaced_by: str | None) -> CodeChange:
    """Retire a code; it stays on old reports and is refused on new ones, naming its replacement."""
    row = session.get(TaxonomyCode, (kind, code))
    if row is None:
        raise NotFound(f"no {kind.value} code '{code}'")
    if replaced_by is not None:
        replacement = session.get(TaxonomyCode, (kind, replaced_by))
        if replacement is None or replacement.retired_at is not None or replaced_by == code:
            raise InvalidInput(f"'{replaced_by}' cannot replace '{code}'",
                               [FieldError(field="replaced_by", reason=f"not an active {kind.value} code")])
    if row.retired_at is None:
        row.retired_at = utcnow()
    row.replaced_by = replaced_by
    session.flush()
    return _change(row)


def _change(row: TaxonomyCode) -> CodeChange:
    return CodeChange(kind=row.kind, code=row.code, label=row.label, parent=row.parent_code,
                      retired=row.retired_at is not None, replaced_by=row.replaced_by)
