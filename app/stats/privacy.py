"""How counts are shown to one caller (pure, no I/O): exact, or perturbed by the cell-key method.

Roles that may see single cases get exact counts. Every other caller (dashboards) gets each published
number (a cell, a total, a trend's count and all-reports, a pair of the matrix, the estimate's counts, the
live-quality counts) perturbed as a cell of its own by `app.privacy.cellkey`: the same reports always get
the same noise, zeros stay zero, and a perturbed count below k is hidden. Totals are never sums of
perturbed cells: they are cells of their own, with their own noise, so no total minus its cells is exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, literal_column

from app.privacy.cellkey import CellKey, Published


@dataclass(frozen=True)
class Shield:
    """The caller's view of counts: exact (no cell key) or perturbed with small values hidden below k."""

    cell_key: CellKey | None = None
    k: int = 1

    @property
    def exact(self) -> bool:
        """Whether counts are shown as they are."""
        return self.cell_key is None

    def cell(self, n: int, key_sum: int) -> Published:
        """One count of n reports whose record keys add up to key_sum, as this caller sees it."""
        if self.cell_key is None:
            return Published(n)
        return self.cell_key.publish(n, key_sum, self.k)

    def record_key(self, report_id: Any) -> ColumnElement[int]:
        """A report's record key in SQL (0 for exact callers, who need none)."""
        return literal_column("0") if self.cell_key is None else self.cell_key.record_key_sql(report_id)

    def key_sum(self, report_id: Any) -> ColumnElement[int]:
        """The sum of the record keys of a group's reports (each report once per group)."""
        return literal_column("0") if self.cell_key is None else func.sum(self.cell_key.record_key_sql(report_id))


EXACT = Shield()

