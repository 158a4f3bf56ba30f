"""The interval methods against published worked examples and hand computation."""

from __future__ import annotations

import math
import random

import pytest

from retainer.measure import stats
from retainer.measure.uplift import Arm, uplift


@pytest.mark.parametrize(("successes", "n", "low", "high"), [
    # Newcombe (1998), "Two-sided confidence intervals for the single proportion", Table I,
    # method 3 (Wilson score interval without continuity correction).
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0, 0.1611),
    (1, 29, 0.0061, 0.1718),
])
def test_wilson_matches_newcombe(successes: int, n: int, low: float, high: float) -> None:
    estimate = stats.wilson(successes, n)
    assert estimate.value == pytest.approx(successes / n)
    assert (round(estimate.low or 0, 4), round(estimate.high or 0, 4)) == (low, high)


def test_wilson_solves_the_score_equation() -> None:
    # The bounds are the two p whose score statistic |p̂ − p| / √(p(1−p)/n) equals z.
    z, p_hat, n = stats.z_value(0.9), 7 / 40, 40
    estimate = stats.wilson(7, 40, 0.9)
    for bound in (estimate.low, estimate.high):
        assert bound is not None
        assert abs(p_hat - bound) / math.sqrt(bound * (1 - bound) / n) == pytest.approx(z)


def test_no_observations_give_no_interval() -> None:
    assert stats.wilson(0, 0) == stats.Estimate.empty()
    assert stats.nps(0, 0, 0) == stats.Estimate.empty()
    assert stats.mean_interval(1, 4.0, None) == stats.Estimate(4.0, None, None)


def test_nps_is_the_mean_of_plus_one_zero_minus_one() -> None:
    # 5 promoters, 3 passives, 2 detractors: scores +1×5, 0×3, −1×2.
    scores = [1] * 5 + [0] * 3 + [-1] * 2
    mean = sum(scores) / 10
    variance = sum((s - mean) ** 2 for s in scores) / 10      # population variance
    half = 1.959963984540054 * math.sqrt(variance / 10)
    estimate = stats.nps(5, 2, 10)
    assert estimate.value == pytest.approx(30.0)
    assert estimate.low == pytest.approx(100 * (mean - half))
    assert estimate.high == pytest.approx(100 * (mean + half))


def test_nps_interval_stays_on_its_scale() -> None:
    estimate = stats.nps(3, 0, 3)
    assert estimate.value == 100 and estimate.high == 100
    assert stats.nps(0, 2, 2).low == -100


def test_mean_interval_by_hand() -> None:
    values = [2.0, 4.0, 4.0, 5.0, 10.0]
    mean = sum(values) / 5
    sample_variance = sum((v - mean) ** 2 for v in values) / 4
    estimate = stats.mean_interval(5, mean, sample_variance)
    half = 1.959963984540054 * math.sqrt(sample_variance / 5)
    assert (estimate.low, estimate.high) == (pytest.approx(mean - half),
                                             pytest.approx(mean + half))


def test_ratio_of_sums_uses_the_delta_method() -> None:
    before = [100.0, 200.0, 50.0, 150.0]
    after = [100.0, 150.0, 0.0, 180.0]
    r = sum(after) / sum(before)
    residuals = sum((y - r * x) ** 2 for x, y in zip(before, after, strict=True))
    se = math.sqrt(residuals / 3 / 4) / (sum(before) / 4)
    sums = stats.RatioSums(4, sum(before), sum(after), sum(x * x for x in before),
                           sum(y * y for y in after),
                           sum(x * y for x, y in zip(before, after, strict=True)))
    estimate = stats.ratio(sums)
    assert estimate.value == pytest.approx(430 / 500)
    assert estimate.high == pytest.approx(r + 1.959963984540054 * se)


@pytest.mark.parametrize(("a", "m", "b", "n", "low", "high"), [
    # Newcombe (1998), "Interval estimation for the difference between independent
    # proportions", Table II, method 10 (hybrid score, no continuity correction).
    (56, 70, 48, 80, 0.0524, 0.3339),
    (9, 10, 3, 10, 0.1705, 0.8090),
    (6, 7, 2, 7, 0.0582, 0.8062),
])
def test_difference_of_proportions_matches_newcombe(a: int, m: int, b: int, n: int,
                                                    low: float, high: float) -> None:
    estimate = stats.difference_of_proportions(a, m, b, n)
    assert estimate.value == pytest.approx(a / m - b / n)
    assert (round(estimate.low or 0, 4), round(estimate.high or 0, 4)) == (low, high)


def test_uplift_compares_treated_with_holdout() -> None:
    result = uplift("save_call", "retained", Arm(70, 56), Arm(80, 48))
    assert result.difference.value == pytest.approx(0.2)
    assert not result.small
    assert uplift("x", "retained", Arm(20, 10), Arm(200, 100)).small


def test_roc_auc_counts_ties_as_half() -> None:
    # churners score 0.9, 0.8, 0.4; others 0.7, 0.4, 0.2, 0.1: of 12 pairs the churner
    # ranks higher in 10 and ties in 1 → (10 + 0.5) / 12.
    counts = [(0.9, 1, 0), (0.8, 1, 0), (0.7, 0, 1), (0.4, 1, 1), (0.2, 0, 1), (0.1, 0, 1)]
    result = stats.roc(counts)
    assert result.auc.value == pytest.approx(10.5 / 12)
    assert (result.positives, result.negatives) == (3, 4)
    assert result.fpr[0] == result.tpr[0] == 0 and result.fpr[-1] == result.tpr[-1] == 1


def test_roc_auc_equals_the_pairwise_probability() -> None:
    rng = random.Random(5)
    positives = [round(rng.gauss(1, 1), 1) for _ in range(60)]
    negatives = [round(rng.gauss(0, 1), 1) for _ in range(90)]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in positives for n in negatives)
    scores = sorted(set(positives) | set(negatives))
    counts = [(s, positives.count(s), negatives.count(s)) for s in scores]
    assert stats.roc(counts).auc.value == pytest.approx(wins / (60 * 90))


def test_hanley_mcneil_by_hand() -> None:
    auc, n1, n0 = 0.8, 50, 100
    q1, q2 = auc / (2 - auc), 2 * auc ** 2 / (1 + auc)
    se = math.sqrt((auc * (1 - auc) + (n1 - 1) * (q1 - auc ** 2)
                    + (n0 - 1) * (q2 - auc ** 2)) / (n1 * n0))
    estimate = stats.hanley_mcneil(auc, n1, n0)
    assert estimate.low == pytest.approx(auc - 1.959963984540054 * se)


def test_roc_without_both_classes_has_no_area() -> None:
    assert stats.roc([(1.0, 3, 0)]).auc.value is None
