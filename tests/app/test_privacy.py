"""Cell-key perturbation (pure): bounded zero-mean noise, the same for the same reports, zeros exact."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from app.privacy.cellkey import NOISE_BOUND, NOISE_ROW_DEFAULT, NOISE_ROWS, CellKey, P, Published
from app.stats.privacy import EXACT, Shield

KEY = CellKey.from_secret("test")


def test_every_noise_row_is_a_zero_mean_distribution_within_the_bound_that_keeps_counts_non_negative() -> None:
    for n, row in [*NOISE_ROWS.items(), (3, NOISE_ROW_DEFAULT)]:
        assert abs(sum(p for _, p in row) - 1) < 1e-12
        assert abs(sum(d * p for d, p in row)) < 1e-12
        assert all(-NOISE_BOUND <= d <= NOISE_BOUND and n + d >= 0 for d, _ in row)


def test_the_sql_record_key_is_the_python_one_and_stays_within_64_bits() -> None:
    for report_id in (1, 2, 999_999, 2**31 - 2):
        x = (report_id * KEY.a + KEY.b) % P
        assert x * x < 2**63 and (x * x % P) * KEY.c + x < 2**63
        assert 0 <= KEY.record_key(report_id) < P
    assert CellKey.from_secret("test") == KEY != CellKey.from_secret("another installation")


@given(st.sets(st.integers(1, 10**6), min_size=1, max_size=40), st.integers(1, 8))
def test_the_same_reports_always_get_the_same_published_count(reports: set[int], k: int) -> None:
    key_sum = sum(KEY.record_key(r) for r in reports)
    first = KEY.publish(len(reports), key_sum, k)
    # In any order, and folded from any split of the reports (months into a quarter).
    ordered = sorted(reports)
    half = sum(KEY.record_key(r) for r in ordered[: len(ordered) // 2])
    assert KEY.publish(len(reports), half + (key_sum - half), k) == first
    if first.suppressed:
        assert first.value is None and len(reports) + KEY.noise(len(reports), key_sum) < k
    else:
        assert first.value is not None and first.value >= k and abs(first.value - len(reports)) <= NOISE_BOUND


def test_zeros_stay_zero_and_small_perturbed_counts_are_hidden() -> None:
    assert KEY.publish(0, 0, 5) == Published(0)
    assert all(KEY.publish(n, s, 5).suppressed for n in (1, 2) for s in range(0, P, P // 50))
    assert EXACT.cell(3, 12345) == Published(3)
    assert Shield(KEY, 5).cell(0, 0) == Published(0)


def test_noise_follows_its_table_over_many_sets_of_reports() -> None:
    rng = random.Random(3)
    noises = [KEY.noise(10, sum(KEY.record_key(r) for r in rng.sample(range(1, 10**6), 10))) for _ in range(20_000)]
    for d, p in NOISE_ROW_DEFAULT:
        assert abs(noises.count(d) / len(noises) - p) < 0.015, d
