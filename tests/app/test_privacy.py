"""Small-number protection: no hidden count can be recomputed from the total of its group."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from app.stats.privacy import Cell, protect, suppress_small_counts


def test_primary_suppression() -> None:
    assert suppress_small_counts([0, 1, 4, 5, 12], 5) == [
        Cell(0, False), Cell(None, True), Cell(None, True), Cell(5, False), Cell(12, False)]


def test_a_lone_hidden_cell_takes_the_smallest_other_with_it() -> None:
    rows = [("jan", 3), ("jan", 9), ("jan", 20), ("feb", 0), ("feb", 8)]
    assert protect(rows, 5) == [Cell(None, True), Cell(None, True), Cell(20, False), Cell(0, False), Cell(8, False)]


@given(st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 12)), min_size=1, max_size=12), st.integers(2, 6))
def test_no_group_has_exactly_one_hidden_nonzero_cell_that_its_total_would_reveal(
    rows: list[tuple[str, int]], k: int
) -> None:
    cells = protect(rows, k)
    for group, members in itertools.groupby(sorted(range(len(rows)), key=lambda i: rows[i][0]),
                                            key=lambda i: rows[i][0]):
        indexes = list(members)
        hidden = [i for i in indexes if cells[i].suppressed]
        nonzero_visible = [i for i in indexes if not cells[i].suppressed and rows[i][1] > 0]
        assert len(hidden) != 1 or not nonzero_visible, group
        for i in indexes:
            n = rows[i][1]
            assert cells[i].suppressed or cells[i].value == n
            if 0 < n < k:
                assert cells[i].suppressed
