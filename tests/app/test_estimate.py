"""The estimate's 95 % interval covers the true count in at least 90 of 100 simulated municipalities."""

from __future__ import annotations

import numpy as np

from app.stats.estimate import Stratum, estimate


def simulate(seed: int) -> tuple[int, list[Stratum], int]:
    """A municipality with known truth: bands of unreviewed reports, some reviewed at random."""
    rng = np.random.default_rng(1000 + seed)
    bands = [("flag_high", 120, 0.9, 40), ("flag_low", 180, 0.55, 30), ("unflagged", 4000, 0.012, 80)]
    strata, truth = [], 0
    for name, size, rate, reviewed in bands:
        is_case = rng.random(size) < rate
        order = rng.permutation(size)
        sample, rest = order[:reviewed], order[reviewed:]
        strata.append(Stratum(name, population=len(rest), reviewed=reviewed, positives=int(is_case[sample].sum())))
        truth += int(is_case[rest].sum())
    confirmed = 61
    return confirmed, strata, confirmed + truth


def test_interval_covers_the_truth_in_at_least_90_of_100_runs() -> None:
    covered = 0
    for seed in range(100):
        confirmed, strata, truth = simulate(seed)
        result = estimate(confirmed, strata, seed=seed, draws=4000)
        covered += result.low <= truth <= result.high
    assert covered >= 90, covered


def test_no_reviews_gives_an_honestly_wide_interval() -> None:
    result = estimate(10, [Stratum("unscored", population=500, reviewed=0, positives=0)])
    assert result.low <= 10 + 25 and result.high >= 10 + 475


def test_nothing_unreviewed_is_exact() -> None:
    result = estimate(42, [Stratum("flag_high", population=0, reviewed=30, positives=20)])
    assert (result.total, result.low, result.high) == (42.0, 42, 42)
