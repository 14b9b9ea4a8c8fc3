"""Taxonomy rules: mapping reporter labels to codes, validating codes, adding and retiring codes."""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypedDict

from sqlalchemy import Select, String, cast, func, select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.errors import Conflict, FieldError, InvalidInput, NotFound, echo
from app.taxonomy.models import CategoryAlias, CodeKind, TaxonomyCode
from app.taxonomy.schemas import (
    KIND_CODE_PATTERNS,
    LOWER_CODE_PATTERN,
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


# Target groups and services are written as people write them: "Barn 6–12 år", "barn 6-12", "Barn_6_12",
# "Skolehelsetjenesten", "barnehager", "IT-systemet". A key keeps the words and numbers (any dash, underscore,
# slash or comma between them is a space), folds case and æ/ø/å, drops "år" and a "til" between numbers, and
# cuts a definite or plural ending off each word, so that these and the code or label meet.
_FOLD = str.maketrans({"æ": "ae", "ø": "o", "å": "a", "ä": "a", "ö": "o"})
_WORD = re.compile(r"[^\W_]+")
_ENDINGS = ("eret", "ene", "ne", "et", "en", "er", "a", "e")  # -ene/-er plural, -en/-et/-a definite
_YEARS = {"ar", "aar"}  # år, folded


def _stem(word: str) -> str:
    if not word.isalpha():
        return word
    for ending in _ENDINGS:
        if word.endswith(ending) and len(word) - len(ending) >= 3:
            word = word[:-len(ending)]
            break
    # sykehjemmet -> sykehjemm -> sykehjem; ungdommer -> ungdom
    return word[:-1] if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "aeiouy" else word


def code_key(text: str) -> str:
    """A key of a target group or service as written: its code, its label or a common variant of either."""
    words = _WORD.findall(unicodedata.normalize("NFC", text).casefold().translate(_FOLD).replace("&", " og "))
    kept = [w for i, w in enumerate(words) if w not in _YEARS and not (
        w == "til" and 0 < i < len(words) - 1 and words[i - 1].isdigit() and words[i + 1].isdigit())]
    return " ".join(_stem(w) for w in kept)


def _code_keys(row: CodeRow) -> set[str]:
    """The keys a code answers to: its code, its label, the label without a parenthesis ("Gravide og spedbarn
    (under 1 år)"), and each part of a label of alternatives ("SFO/AKS")."""
    label = row.label
    texts = {row.code, label, re.sub(r"\(.*?\)", " ", label), *label.split("/")}
    return {key for key in map(code_key, texts) if key}


def _code_index(rows: Iterable[CodeRow]) -> dict[str, str]:
    """Keys to codes. An active code wins a key over a retired one; a key two active codes share is dropped
    (ambiguous: better a 422 listing the codes than a guess)."""
    index: dict[str, str] = {}
    ambiguous: set[str] = set()
    active: dict[str, str] = {}
    for row in sorted(rows, key=lambda r: (r.retired_at is None, r.code)):
        for key in _code_keys(row):
            if row.retired_at is None and active.setdefault(key, row.code) != row.code:
                ambiguous.add(key)
            index[key] = row.code
    return {key: code for key, code in index.items() if key not in ambiguous}


@dataclass(frozen=True, slots=True)
class CodeRow:
    """One taxonomy code as a snapshot holds it: plain values, safe to share between sessions and threads."""

    kind: CodeKind
    code: str
    label: str
    parent_code: str | None
    children_and_youth: bool
    retired_at: datetime | None
    replaced_by: str | None


_MEMO_LIMIT = 10_000  # distinct labels remembered per snapshot; beyond it lookups are computed, not stored


@dataclass(frozen=True)
class Taxonomy:
    """A snapshot of the taxonomy answering lookups without I/O; read-only once built, shared by requests.

    Label keys are normalised once when the snapshot is built, and the answers for labels already seen
    are remembered: ingest maps every delivery's category and unit, and the same few labels recur.
    """

    codes: dict[CodeKind, dict[str, CodeRow]]
    aliases: dict[str, str] = field(default_factory=dict)
    _top_labels: dict[str, str] = field(init=False, repr=False, compare=False)
    _child_labels: dict[str, dict[str, str]] = field(init=False, repr=False, compare=False)
    _sub_labels: dict[str, str] = field(init=False, repr=False, compare=False)
    _found: dict[CodeKind, dict[str, str]] = field(init=False, repr=False, compare=False)
    _keys: dict[CodeKind, dict[str, str]] = field(init=False, repr=False, compare=False)
    _categories_memo: dict[str, str | None] = field(init=False, repr=False, compare=False)
    _find_memo: dict[tuple[CodeKind, str], str | None] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        rows = sorted(self.codes[CodeKind.CATEGORY].values(), key=lambda r: r.code)
        top: dict[str, str] = {}
        children: dict[str, dict[str, str]] = {}
        sub: dict[str, str] = {}
        for row in rows:  # by code, so that of two equal labels the later code wins, as it always has
            key = normalise_label(row.label)
            if row.parent_code is None:
                top[key] = row.code
            else:
                children.setdefault(row.parent_code, {})[key] = row.code
                sub[key] = row.code
        found: dict[CodeKind, dict[str, str]] = {}
        for kind in (CodeKind.DEPARTMENT, CodeKind.AGENCY):
            # The first code (in code order) whose label or code matches a key answers for it.
            keys: dict[str, str] = {}
            for code, row in self.codes[kind].items():
                keys.setdefault(normalise_label(row.label), code)
                keys.setdefault(code.casefold(), code)
            found[kind] = keys
        code_keys = {kind: _code_index(self.codes[kind].values())
                     for kind in (CodeKind.TARGET_GROUP, CodeKind.SERVICE)}
        for name, value in (("_top_labels", top), ("_child_labels", children), ("_sub_labels", sub),
                            ("_found", found), ("_keys", code_keys), ("_categories_memo", {}), ("_find_memo", {})):
            object.__setattr__(self, name, value)

    def active(self, kind: CodeKind) -> list[str]:
        """The codes of a kind that may be used on new reports."""
        return sorted(c for c, row in self.codes[kind].items() if row.retired_at is None)

    def find_code(self, kind: CodeKind, text: str) -> str | None:
        """The target group or service a code, label or common variant of either stands for (retired ones too),
        or None."""
        if text in self.codes[kind]:
            return text
        memo = self._find_memo
        if (kind, text) in memo:
            return memo[(kind, text)]
        code = self._keys[kind].get(code_key(text))
        if len(memo) < _MEMO_LIMIT:
            memo[(kind, text)] = code
        return code

    def resolve_codes(
        self, kind: CodeKind, values: Iterable[str], location: str, already_present: Iterable[str] = ()
    ) -> tuple[list[str], list[FieldError]]:
        """Target groups or services sent on a report or a review, as codes (each value a code or a label),
        and the problems: unknown values (naming the valid codes), and retired codes not already on it."""
        known = self.codes[kind]
        codes: list[str] = []
        problems = []
        keep: set[str] | None = None
        for index, value in enumerate(values):
            where = f"{location}[{index}]"
            code = self.find_code(kind, value)
            if code is None:
                problems.append(FieldError(
                    field=where,
                    reason=f"unknown {kind.value} '{echo(value)}'; valid codes (their labels are accepted too): "
                           f"{', '.join(self.active(kind))}",
                ))
                continue
            row = known[code]
            if row.retired_at is not None:
                keep = set(already_present) if keep is None else keep
                if code not in keep:
                    instead = f"; use '{row.replaced_by}' instead" if row.replaced_by else ""
                    problems.append(FieldError(field=where,
                                               reason=f"{kind.value} code '{echo(code)}' is retired{instead}"))
                    continue
            if code not in codes:
                codes.append(code)
        return codes, problems

    def map_category(self, label: str | None) -> str | None:
        """The category code a reporter's label or code stands for, or None when unknown."""
        if not label or not label.strip():
            return None
        memo = self._categories_memo
        if label in memo:
            return memo[label]
        categories = self.codes[CodeKind.CATEGORY]
        code = self._match_category(label)
        if code is not None:
            row = categories[code]
            if row.retired_at is not None:
                code = row.replaced_by if row.replaced_by in categories else None
        if len(memo) < _MEMO_LIMIT:
            memo[label] = code
        return code

    def find_category(self, label: str) -> str | None:
        """The category a code or label stands for as a reporter would write it (retired ones too), or None."""
        return self._match_category(label) if label.strip() else None

    def _match_category(self, label: str) -> str | None:
        categories = self.codes[CodeKind.CATEGORY]
        stripped = label.strip()
        if stripped in categories:
            return stripped
        key = normalise_label(stripped)
        if key in self.aliases:
            return self.aliases[key]
        if key in self._top_labels:
            return self._top_labels[key]
        parts = _PATH_SEPARATORS.split(stripped)
        if len(parts) == 2:
            parent = self._top_labels.get(normalise_label(parts[0]))
            if parent is not None:
                return self._child_labels.get(parent, {}).get(normalise_label(parts[1]))
        return self._sub_labels.get(key)

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
        memo = self._find_memo
        if (kind, text) in memo:
            return memo[(kind, text)]
        stripped = text.strip()
        code = stripped if stripped in self.codes[kind] else self._found[kind].get(normalise_label(stripped))
        if len(memo) < _MEMO_LIMIT:
            memo[(kind, text)] = code
        return code


# A digest of everything a snapshot depends on, computed by the database in one small query. Equal
# fingerprints mean equal taxonomies, so a snapshot is reused for as long as the query returns the same
# text: changes by another process (a CLI, another worker or replica), by this one, and rollbacks are
# all seen by the next request, without reading and rebuilding a few hundred rows on every request.
_FIELD, _ROW = "\x1f", "\x1e"
_SNAPSHOTS_KEPT = 8  # one per database a process talks to (tests use several)
_snapshots: dict[tuple[str, str], Taxonomy] = {}
_snapshots_lock = threading.Lock()


def _fingerprint_statement() -> Select[str, str]:
    code, alias = TaxonomyCode, CategoryAlias

    def text(column: Any) -> Any:
        return func.coalesce(cast(column, String), "")

    row = text(code.kind)
    for column in (code.code, code.label, code.parent_code, code.children_and_youth, code.retired_at,
                   code.replaced_by):
        row = row + _FIELD + text(column)
    return select(
        select(func.aggregate_strings(row, _ROW)).scalar_subquery(),
        select(func.aggregate_strings(alias.alias_key + _FIELD + alias.category_code, _ROW)).scalar_subquery(),
    )


_FINGERPRINT = _fingerprint_statement()


def load_taxonomy(session: Session) -> Taxonomy:
    """The taxonomy as this transaction sees it: one small query, and a rebuild only when it changed."""
    codes_text, aliases_text = session.execute(_FINGERPRINT).one()
    key = (codes_text or "", aliases_text or "")
    snapshot = _snapshots.get(key)
    if snapshot is None:
        snapshot = _read_taxonomy(session)
        with _snapshots_lock:
            while len(_snapshots) >= _SNAPSHOTS_KEPT:
                del _snapshots[next(iter(_snapshots))]
            _snapshots[key] = snapshot
    return snapshot


def _read_taxonomy(session: Session) -> Taxonomy:
    """Read the whole taxonomy (a few hundred rows) into a new snapshot."""
    codes: dict[CodeKind, dict[str, CodeRow]] = {kind: {} for kind in CodeKind}
    t = TaxonomyCode
    for row in session.execute(
        select(t.kind, t.code, t.label, t.parent_code, t.children_and_youth, t.retired_at, t.replaced_by)
        .order_by(t.kind, t.code)
    ):
        codes[row.kind][row.code] = CodeRow(row.kind, row.code, row.label, row.parent_code,
                                            bool(row.children_and_youth), row.retired_at, row.replaced_by)
    # A Result has keys(), so dict() would take it for a mapping: pass its rows as an iterator.
    aliases = dict(iter(session.execute(select(CategoryAlias.alias_key, CategoryAlias.category_code))))
    return Taxonomy(codes=codes, aliases=aliases)


class _CodeFields(TypedDict):
    """What every code shows, typed as CodeOut declares it."""

    code: str
    label: str
    retired: bool
    replaced_by: str | None


def taxonomy_tree(session: Session) -> TaxonomyOut:
    """The taxonomy as the API shows it: categories as a tree, departments with their agencies."""
    taxonomy = load_taxonomy(session)

    def out(row: CodeRow) -> _CodeFields:
        return {"code": row.code, "label": row.label, "retired": row.retired_at is not None,
                "replaced_by": row.replaced_by}

    categories = taxonomy.codes[CodeKind.CATEGORY]

    def node(row: CodeRow) -> CategoryNode:
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
    pattern = KIND_CODE_PATTERNS.get(kind, LOWER_CODE_PATTERN)
    if not re.fullmatch(pattern, new.code):
        example = "upper-case letters and digits, like BBSM" if kind is CodeKind.DEPARTMENT else \
            "lower-case letters, digits and _, like barn_6_12"
        raise InvalidInput(f"a {kind.value} code is {example}",
                           [FieldError(field="code", reason=f"must match {pattern}")])
    if session.get(TaxonomyCode, (kind, new.code)) is not None:
        raise Conflict(f"{kind.value} code '{echo(new.code)}' exists",
                       [FieldError(field="code", reason="already exists")])
    if new.parent is not None:
        parent_kind = _PARENT_KIND.get(kind)
        if parent_kind is None:
            raise InvalidInput("this kind of code has no parent",
                               [FieldError(field="parent", reason=f"{kind.value} codes have no parent")])
        if session.get(TaxonomyCode, (parent_kind, new.parent)) is None:
            raise InvalidInput(f"unknown parent '{echo(new.parent)}'",
                               [FieldError(field="parent",
                                           reason=f"unknown {parent_kind.value} code '{echo(new.parent)}'")])
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
        raise NotFound(f"no {kind.value} code '{echo(code)}'")
    if replaced_by is not None:
        replacement = session.get(TaxonomyCode, (kind, replaced_by))
        if replacement is None or replacement.retired_at is not None or replaced_by == code:
            raise InvalidInput(f"'{echo(replaced_by)}' cannot replace '{echo(code)}'",
                               [FieldError(field="replaced_by", reason=f"not an active {kind.value} code")])
    if row.retired_at is None:
        row.retired_at = utcnow()
    row.replaced_by = replaced_by
    session.flush()
    return _change(row)


def _change(row: TaxonomyCode) -> CodeChange:
    return CodeChange(kind=row.kind, code=row.code, label=row.label, parent=row.parent_code,
                      retired=row.retired_at is not None, replaced_by=row.replaced_by)
