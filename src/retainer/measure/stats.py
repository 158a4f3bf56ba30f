"""The statistics behind every figure: confidence intervals, ROC AUC, two-proportion uplift.

Everything here works on counts and sums that SQL has already aggregated, so it is pure Python
(plus numpy for ROC curves) and cheap. Intervals are analytic, never bootstrapped:

* a share (retention, CSAT, any rate): the Wilson score interval, which stays inside [0, 1]
  and behaves for small groups and shares near 0 or 1;
* a mean (and NPS, the mean of +1 / 0 / −1 per respondent): the normal approximation
  mean ± z·s/√n;
* a ratio of sums (gross and net revenue retention): the ratio estimator's delta-method
  standard error;
* a difference of two shares (playbook uplift): Newcombe's hybrid score interval (method 10
  of Newcombe 1998), built from the two Wilson intervals;
* ROC AUC: the Mann–Whitney statistic with ties counted half, and the Hanley–McNeil (1982)
  standard error.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from statistics import NormalDist


@dataclass(frozen=True)
class Estimate:
    """A value with its confidence interval; bounds are None when they cannot be computed
    (no observations, or one observation for a mean)."""

    value: float | None
    low: float | None
    high: float | None

    @classmethod
    def empty(cls) -> Estimate:
        return cls(None, None, None)


def z_value(confidence: float) -> float:
    """The two-sided normal quantile: 0.95 → 1.959964…"""
    if not 0 < confidence < 1:
        raise ValueError("confidence must lie strictly between 0 and 1")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson(successes: float, n: float, confidence: float = 0.95) -> Estimate:
    """A share with its Wilson score interval."""
    if n <= 0:
        return Estimate.empty()
    z = z_value(confidence)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return Estimate(p, max(0.0, centre - half), min(1.0, centre + half))


def mean_interval(n: float, mean: float | None, variance: float | None,
                  confidence: float = 0.95) -> Estimate:
    """A mean with mean ± z·s/√n (`variance` is the sample variance, n − 1 in the divisor)."""
    if n <= 0 or mean is None:
        return Estimate.empty()
    if n < 2 or variance is None:
        return Estimate(mean, None, None)
    half = z_value(confidence) * math.sqrt(max(variance, 0.0) / n)
    return Estimate(mean, mean - half, mean + half)


def nps(promoters: float, detractors: float, n: float, confidence: float = 0.95) -> Estimate:
    """Net Promoter Score on the usual −100…100 scale.

    Each respondent scores +1 (promoter), 0 (passive) or −1 (detractor); NPS is 100 × their
    mean, and its variance is (p₊ + p₋ − (p₊ − p₋)²) / n.
    """
    if n <= 0:
        return Estimate.empty()
    plus, minus = promoters / n, detractors / n
    score = plus - minus
    if n < 2:
        return Estimate(100 * score, None, None)
    half = z_value(confidence) * math.sqrt(max(plus + minus - score * score, 0.0) / n)
    return Estimate(100 * score, max(-100.0, 100 * (score - half)),
                    min(100.0, 100 * (score + half)))


@dataclass(frozen=True)
class RatioSums:
    """Sums over units for a ratio of totals Σy / Σx (y: revenue after, x: revenue before)."""

    n: float
    x: float
    y: float
    xx: float
    yy: float
    xy: float


def ratio(sums: RatioSums, confidence: float = 0.95) -> Estimate:
    """Σy / Σx with the ratio estimator's delta-method interval:
    SE² = Σ(yᵢ − R·xᵢ)² / ((n − 1) · n · x̄²)."""
    if sums.n <= 0 or sums.x <= 0:
        return Estimate.empty()
    r = sums.y / sums.x
    if sums.n < 2:
        return Estimate(r, None, None)
    residual = max(sums.yy - 2 * r * sums.xy + r * r * sums.xx, 0.0)
    mean_x = sums.x / sums.n
    se = math.sqrt(residual / (sums.n - 1) / sums.n) / mean_x
    half = z_value(confidence) * se
    return Estimate(r, max(0.0, r - half), r + half)


def difference_of_proportions(treated_successes: float, treated_n: float,
                              control_successes: float, control_n: float,
                              confidence: float = 0.95) -> Estimate:
    """p_treated − p_control with Newcombe's hybrid score interval (method 10).

    With Wilson intervals (l₁, u₁) and (l₂, u₂) of the two shares, the difference
    d = p₁ − p₂ has the interval (d − √((p₁−l₁)² + (u₂−p₂)²), d + √((u₁−p₁)² + (p₂−l₂)²)).
    """
    one = wilson(treated_successes, treated_n, confidence)
    two = wilson(control_successes, control_n, confidence)
    if one.value is None or two.value is None:
        return Estimate.empty()
    assert one.low is not None and one.high is not None
    assert two.low is not None and two.high is not None
    d = one.value - two.value
    below = math.sqrt((one.value - one.low) ** 2 + (two.high - two.value) ** 2)
    above = math.sqrt((one.high - one.value) ** 2 + (two.value - two.low) ** 2)
    return Estimate(d, d - below, d + above)


@dataclass(frozen=True)
class Roc:
    """A ROC curve (false and true positive rates from the strictest threshold down) and its
    area, with the Hanley–McNeil interval."""

    fpr: tuple[float, ...]
    tpr: tuple[float, ...]
    thresholds: tuple[float, ...]
    auc: Estimate
    positives: int
    negatives: int


def roc(counts: Iterable[tuple[float, float, float]], confidence: float = 0.95) -> Roc:
    """ROC of a risk score from (score, positives, negatives) per distinct score, where a
    higher score means more risk. Tied scores form one step, so the area is the
    Mann–Whitney probability that a positive outranks a negative, ties counting half."""
    rows = sorted(((float(s), float(p), float(n)) for s, p, n in counts), reverse=True)
    total_pos = sum(p for _, p, _ in rows)
    total_neg = sum(n for _, _, n in rows)
    fpr, tpr, thresholds = [0.0], [0.0], [math.inf]
    if total_pos == 0 or total_neg == 0:
        return Roc(tuple(fpr), tuple(tpr), tuple(thresholds), Estimate.empty(),
                   int(total_pos), int(total_neg))
    area, tp, fp = 0.0, 0.0, 0.0
    for score, pos, neg in rows:
        # A step over tied scores is a trapezoid: its ties count half.
        area += neg * (tp + pos / 2)
        tp += pos
        fp += neg
        fpr.append(fp / total_neg)
        tpr.append(tp / total_pos)
        thresholds.append(score)
    auc = area / (total_pos * total_neg)
    return Roc(tuple(fpr), tuple(tpr), tuple(thresholds),
               hanley_mcneil(auc, total_pos, total_neg, confidence),
               int(total_pos), int(total_neg))


def hanley_mcneil(auc: float, positives: float, negatives: float,
                  confidence: float = 0.95) -> Estimate:
    """AUC ± z·SE with Hanley and McNeil's (1982) standard error."""
    q1 = auc / (2 - auc)
    q2 = 2 * auc * auc / (1 + auc)
    variance = (auc * (1 - auc) + (positives - 1) * (q1 - auc * auc)
                + (negatives - 1) * (q2 - auc * auc)) / (positives * negatives)
    half = z_value(confidence) * math.sqrt(max(variance, 0.0))
    return Estimate(auc, max(0.0, auc - half), min(1.0, auc + half))


def quantiles(values: Iterable[float], points: Iterable[float]) -> list[float | None]:
    """Linear-interpolation quantiles (numpy's default) of `values`; None when empty."""
    import numpy as np

    data = np.asarray(list(values), dtype=float)
    wanted = list(points)
    if data.size == 0:
        return [None for _ in wanted]
    return [float(v) for v in np.quantile(data, wanted)]
