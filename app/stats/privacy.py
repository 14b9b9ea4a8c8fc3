"""Small-number protection for roles that may not see single cases (pure, no I/O).

Primary suppression hides every count from 1 to k−1. Secondary suppression stops a hidden cell from
being recomputed from the total of its group: when a group (the cells that share the first key, or all
cells of a one-dimensional answer) has exactly one hidden cell, the smallest other non-zero cell of that
group is hidden too. Zeros are shown: "none" identifies nobody. Totals are given separately and are
themselves hidden when below k.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Cell:
    """A count, or None with suppressed=True."""

    value: int | None
    suppressed: bool


def suppress_small_counts(counts: Sequence[int], k: int) -> list[Cell]:
    """Hide counts below k (primary suppression only)."""
    return [Cell(n if n == 0 or n >= k else None, 0 < n < k) for n in counts]


def protect(rows: Sequence[tuple[Hashable, int]], k: int) -> list[Cell]:
    """Primary and secondary suppression over cells grouped by their first key."""
    cells = suppress_small_counts([n for _, n in rows], k)
    groups: dict[Hashable, list[int]] = defaultdict(list)
    for index, (group, _) in enumerate(rows):
        groups[group].append(index)
    for members in groups.values():
        hidden = [i for i in members if cells[i].suppressed]
        if len(hidden) != 1:
            continue
        visible = [i for i in members if not cells[i].suppressed and (rows[i][1] or 0) > 0]
        if visible:
            smallest = min(visible, key=lambda i: (rows[i][1], i))
            cells[smallest] = Cell(None, True)
    return cells
