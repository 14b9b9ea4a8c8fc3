"""The estimate's 95 % interval covers the true count in at least 90 of 100 simulated municipalities; the
answer is computed from the counts as published, and hidden with any of them."""

from __future__ import annotations

import numpy as np

from app.privacy.cellkey import Published
from app.stats.estimate import Stratum, estimate
from app.stats.service import estimate_answer


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


def published_counts(hidden: str | None = None) -> dict[str, Published]:
    """The counts of stats_queries.estimate_basis as a caller sees them; `hidden` is suppressed."""
    counts = {"confirmed": Published(61), "flag_high": Published(120), "flag_low": Published(180),
              "unflagged": Published(4000), "unscored": Published(7)}
    for band, (reviewed, positives) in {"flag_high": (40, 36), "flag_low": (30, 16), "unflagged": (80, 1)}.items():
        counts[f"{band}_reviewed"], counts[f"{band}_positives"] = Published(reviewed), Published(positives)
    if hidden is not None:
        counts[hidden] = Published(None, suppressed=True)
    return counts


def test_the_answer_is_the_estimate_of_the_published_counts() -> None:
    answer = estimate_answer(published_counts(), "v1")
    expected = estimate(61, [Stratum("flag_high", 120, 40, 36), Stratum("flag_low", 180, 30, 16),
                             Stratum("unflagged", 4000, 80, 1), Stratum("unscored", 7, 0, 0)])
    assert (answer.estimated_total, answer.interval_95) == (expected.total, (expected.low, expected.high))
    assert [(s.name, s.unreviewed_reports, s.reviewed, s.confirmed_in_review) for s in answer.strata] == [
        ("flag_high", 120, 40, 36), ("flag_low", 180, 30, 16), ("unflagged", 4000, 80, 1), ("unscored", 7, 0, 0)]
    assert not answer.suppressed and answer.model_version == "v1"


def test_one_hidden_count_hides_the_estimate_and_its_band() -> None:
    answer = estimate_answer(published_counts(hidden="flag_low_positives"), "v1")
    assert answer.suppressed and answer.estimated_total is None and answer.interval_95 is None
    assert answer.confirmed == 61
    assert [s.name for s in answer.strata if s.suppressed] == ["flag_low"]
