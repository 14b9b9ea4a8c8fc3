"""Who said a stored label, and how lists and exports read it: which codes count officially, and whether a
report still awaits an adviser. How labels are derived from decisions is app.review.labels."""

from __future__ import annotations

import enum
from collections.abc import Iterable


class Provenance(enum.StrEnum):
    """Who said a label: the reporter (through the quality system), the classifier, or an adviser."""

    REPORTER = "reporter"
    CLASSIFIER = "classifier"
    ADVISER = "adviser"


def awaiting_review(flagged: bool | None, confirmed_provenance: str | None) -> bool:
    """A report's `flagged` as lists and exports show it: flagged by the classifier and not yet decided by an
    adviser (the classifier's own flag stays in its classification)."""
    return bool(flagged) and confirmed_provenance != Provenance.ADVISER.value


def official_codes(labels: Iterable[tuple[str, str, str]], dimension: str) -> list[str]:
    """The codes of one dimension that count officially (adviser or reporter, not the classifier), sorted,
    from (dimension, code, provenance) triples."""
    return sorted(code for d, code, provenance in labels
                  if d == dimension and provenance != Provenance.CLASSIFIER.value)
