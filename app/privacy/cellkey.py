"""Consistent perturbation of published counts: the cell-key method of the Australian Bureau of Statistics.

Every report has a fixed pseudo-random record key in [0, P), a keyed function of its id (the key parameters
come from a per-installation secret, migration 0010, so nobody outside can compute a report's key). A
published count's cell key is the sum of its reports' record keys mod P, so the same set of reports always
gets the same cell key, wherever and however often it is asked for, and two different sets get unrelated
keys. The cell key, as a fraction of P, picks the noise from a small table (row by true count, bounded in
[-2, 2], mean zero). So repeating a query gives nothing new, and a difference of two answers is the
difference of the true counts plus the difference of two noises that the caller cannot know.

The record key is computed by the database during aggregation (`record_key_sql`) from the id alone, so
statistics need no extra column or join; it is the same integer arithmetic in Python (`record_key`), which
tests use. Products stay below 2**63 on both engines: every factor is below 2**31.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, cast

P = 2**31 - 1  # a prime; record keys and cell keys are residues mod P

# The perturbation table: noise and its probability, by true count (counts of 3 and more share the last row).
# Each row has mean zero and keeps the published count non-negative; the bound is 2 either way.
NOISE_ROWS: dict[int, tuple[tuple[int, float], ...]] = {
    1: ((-1, 0.30), (0, 0.50), (1, 0.10), (2, 0.10)),
    2: ((-2, 0.05), (-1, 0.20), (0, 0.50), (1, 0.20), (2, 0.05)),
}
NOISE_ROW_DEFAULT: tuple[tuple[int, float], ...] = ((-2, 0.05), (-1, 0.20), (0, 0.50), (1, 0.20), (2, 0.05))
NOISE_BOUND = 2


def _thresholds(row: tuple[tuple[int, float], ...]) -> tuple[tuple[int, int], ...]:
    """Each noise with the cell key below which it applies (cumulative probabilities scaled to P)."""
    total, out = 0.0, []
    for noise, probability in row:
        total += probability
        out.append((noise, round(total * P)))
    return tuple(out)


_THRESHOLDS = {n: _thresholds(row) for n, row in NOISE_ROWS.items()}
_THRESHOLDS_DEFAULT = _thresholds(NOISE_ROW_DEFAULT)


@dataclass(frozen=True)
class Published:
    """A count as a caller sees it: a value, or None with suppressed=True."""

    value: int | None
    suppressed: bool = False


EXACT_ZERO = Published(0)


@dataclass(frozen=True)
class CellKey:
    """The keyed record-key function of one installation, and the noise it gives each cell."""

    a: int
    b: int
    c: int

    @classmethod
    def from_secret(cls, secret: str) -> CellKey:
        """Derive the three parameters from the installation's secret (HMAC-SHA256, one per parameter)."""

        def part(label: bytes) -> int:
            digest = hmac.new(secret.encode(), label, hashlib.sha256).digest()
            return int.from_bytes(digest[:8], "big") % (P - 1) + 1

        return cls(part(b"a"), part(b"b"), part(b"c"))

    def record_key(self, report_id: int) -> int:
        """A report's record key in [0, P): a keyed quadratic of its id (the same as `record_key_sql`)."""
        x = (report_id * self.a + self.b) % P
        return (x * x % P * self.c + x) % P

    def record_key_sql(self, report_id: Any) -> ColumnElement[int]:
        """`record_key` as an SQL expression of a report-id column (integer arithmetic on both engines)."""
        x = (cast(report_id, BigInteger) * self.a + self.b) % P
        return (x * x % P * self.c + x) % P

    @staticmethod
    def noise(n: int, key_sum: int) -> int:
        """The noise of a cell of n ≥ 1 reports whose record keys add up to key_sum."""
        key = key_sum % P
        for noise, below in _THRESHOLDS.get(n, _THRESHOLDS_DEFAULT):
            if key < below:
                return noise
        return NOISE_ROW_DEFAULT[-1][0]

    def publish(self, n: int, key_sum: int, k: int) -> Published:
        """What a caller who may not see single cases is shown for a cell: zero stays zero; otherwise the
        perturbed count, hidden when it is below k."""
        if n == 0:
            return EXACT_ZERO
        value = n + self.noise(n, key_sum)
        return Published(None, True) if value < k else Published(value)
