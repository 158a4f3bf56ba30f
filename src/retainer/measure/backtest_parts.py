"""The backtest's figures, each one SQL aggregate over `bt_obs` (one row per paying account per
date: `score`, `band`, `churned`, `flagged`, component scores `c0`, `c1`, …)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlglot import exp

from retainer.compile.sql import alias, col
from retainer.measure import stats
from retainer.measure.billing import Billing, churn_moments
from retainer.measure.workspace import Workspace, moment
from retainer.rulebook.models import Health

OBS = "bt_obs"


@dataclass(frozen=True)
class BandRow:
    band: str
    n: int
    churned: int
    churn_rate: stats.Estimate        # precision, if this band is read as "will churn"
    recall: float                     # share of all churners that were in this band
    lift: float                       # churn rate / overall churn rate
    cumulative_precision: stats.Estimate   # this band and every lower one together
    cumulative_recall: stats.Estimate


@dataclass(frozen=True)
class FlagRow:
    label: str
    flagged: int
    churned: int
    precision: stats.Estimate
    recall: stats.Estimate


@dataclass(frozen=True)
class CalibrationRow:
    low: float
    high: float
    n: int
    mean_health: float
    churn_rate: stats.Estimate


@dataclass(frozen=True)
class ComponentRow:
    name: str
    n: int
    auc_alone: stats.Estimate
    auc_without: float | None         # the health recomputed without it (weights shared)


@dataclass(frozen=True)
class LeadTime:
    churners: int                     # churned late enough for a full horizon of history
    caught: int                       # of them, red at some run in the horizon before
    days: tuple[float, ...]           # churn − first red run, per caught churner
    share_caught: stats.Estimate

    @property
    def median(self) -> float | None:
        return stats.quantiles(self.days, [0.5])[0]

    @property
    def quartiles(self) -> tuple[float | None, float | None]:
        low, high = stats.quantiles(self.days, [0.25, 0.75])
        return low, high


def _count_if(condition: exp.Expr) -> exp.Expr:
    return exp.Sum(this=exp.Case(ifs=[exp.If(this=condition, true=exp.Literal.number(1))],
                                 default=exp.Literal.number(0)))


def _rows(ws: Workspace, query: exp.Select) -> list[tuple[Any, ...]]:
    return ws.rows(query)


def roc_of(ws: Workspace, score: exp.Expr, confidence: float,
           where: exp.Expr | None = None) -> stats.Roc:
    """ROC of a health-like score (higher = healthier) as a predictor of churn."""
    rounded = exp.Round(this=exp.cast(score, "DOUBLE"), decimals=exp.Literal.number(6))
    query = (exp.select(alias(rounded, "s"), _count_if(col("churned")),
                        _count_if(exp.Not(this=col("churned"))))
             .from_(OBS).where(score.copy().is_(exp.null()).not_()).group_by(rounded.copy()))
    if where is not None:
        query = query.where(where)
    return stats.roc(((-float(s), p, n) for s, p, n in _rows(ws, query)), confidence)


def bands(ws: Workspace, health: Health, confidence: float) -> tuple[BandRow, ...]:
    rows = _rows(ws, exp.select("band", exp.Count(this=exp.Star()), _count_if(col("churned")),
                                exp.Avg(this=col("score")))
                 .from_(OBS).group_by("band"))
    threshold = dict(health.bands)
    rows.sort(key=lambda r: (threshold.get(str(r[0]), float(r[3] or 0)), str(r[0])))
    total_churned = sum(int(r[2]) for r in rows)
    total = sum(int(r[1]) for r in rows)
    base = total_churned / total if total else 0.0
    result, cum_n, cum_churned = [], 0, 0
    for band, n, churned, _ in rows:
        cum_n, cum_churned = cum_n + int(n), cum_churned + int(churned)
        rate = stats.wilson(int(churned), int(n), confidence)
        result.append(BandRow(
            str(band), int(n), int(churned), rate,
            int(churned) / total_churned if total_churned else 0.0,
            (rate.value or 0.0) / base if base else 0.0,
            stats.wilson(cum_churned, cum_n, confidence),
            stats.wilson(cum_churned, total_churned, confidence)))
    return tuple(result)


def flags(ws: Workspace, lowest_band: str, segment: str | None, confidence: float
          ) -> tuple[FlagRow, ...]:
    checks: list[tuple[str, exp.Expr]] = [
        (f"health band {lowest_band}", col("band").eq(exp.Literal.string(lowest_band)))]
    if segment is not None:
        checks.append((f"segment {segment}", col("flagged")))
    result = []
    for label, condition in checks:
        flagged, hit, churned = _rows(ws, exp.select(
            _count_if(condition), _count_if(exp.and_(condition.copy(), col("churned"))),
            _count_if(col("churned"))).from_(OBS))[0]
        result.append(FlagRow(label, int(flagged or 0), int(hit or 0),
                              stats.wilson(int(hit or 0), int(flagged or 0), confidence),
                              stats.wilson(int(hit or 0), int(churned or 0), confidence)))
    return tuple(result)


def calibration(ws: Workspace, confidence: float, width: float = 10
                ) -> tuple[CalibrationRow, ...]:
    """Observed churn per slice of health (0–10, 10–20, …, 90–100)."""
    top = int(100 / width) - 1
    slot = exp.Least(this=exp.Floor(this=col("score") / exp.Literal.number(width)),
                     expressions=[exp.Literal.number(top)])
    rows = _rows(ws, exp.select(alias(slot, "slot"), exp.Count(this=exp.Star()),
                                _count_if(col("churned")), exp.Avg(this=col("score")))
                 .from_(OBS).group_by(slot.copy()).order_by("slot"))
    return tuple(CalibrationRow(float(s) * width, float(s) * width + width, int(n),
                                float(mean), stats.wilson(int(c), int(n), confidence))
                 for s, n, c, mean in rows)


def components(ws: Workspace, names: Sequence[str], weights: Mapping[str, float],
               confidence: float) -> tuple[ComponentRow, ...]:
    """Each component's own AUC, and the health's AUC when it is left out (its weight shared
    among the others, as `missing: redistribute` does) — where the weights are known."""
    result = []
    for index, name in enumerate(names):
        alone = roc_of(ws, col(f"c{index}"), confidence)
        others = [(i, weights[n]) for i, n in enumerate(names) if i != index and n in weights]
        without = None
        if name in weights and len(others) == len(names) - 1 and others:
            without = roc_of(ws, _reweighted(others), confidence).auc.value
        result.append(ComponentRow(name, alone.positives + alone.negatives, alone.auc,
                                   without))
    return tuple(result)


def _reweighted(parts: Sequence[tuple[int, float]]) -> exp.Expr:
    """Σ wᵢ·cᵢ / Σ wᵢ over the components present (c0, c1, … with weights)."""
    def total(term: Callable[[int, float], exp.Expr]) -> exp.Expr:
        summed: exp.Expr | None = None
        for i, w in parts:
            case = exp.Case(ifs=[exp.If(this=col(f"c{i}").is_(exp.null()).not_(),
                                        true=term(i, w))], default=exp.Literal.number(0))
            summed = case if summed is None else exp.Add(this=summed, expression=case)
        assert summed is not None
        return summed

    weighted = total(lambda i, w: exp.Mul(this=exp.Literal.number(w), expression=col(f"c{i}")))
    weight = total(lambda i, w: exp.Literal.number(w))
    return exp.Div(this=exp.Paren(this=weighted), expression=exp.Nullif(
        this=weight, expression=exp.Literal.number(0)))


def lead_time(ws: Workspace, billing: Billing, dates: Sequence[datetime], lowest_band: str,
              horizon: timedelta, confidence: float = 0.95) -> LeadTime:
    """For accounts that churned at least a horizon after the first date (and by the last),
    how long before churn each first showed the lowest band within that horizon."""
    first, last = min(dates), max(dates)
    seconds = exp.Interval(this=exp.Literal.string(str(int(horizon.total_seconds()))),
                           unit=exp.Var(this="SECOND"))
    churned_at, at = col("__churned_at", "c"), col("as_of", "r")
    red = exp.and_(col("band", "h").eq(exp.Literal.string(lowest_band)), at < churned_at,
                   exp.Add(this=at.copy(), expression=seconds) >= churned_at.copy())
    first_red = exp.Min(this=exp.Case(ifs=[exp.If(this=red, true=at.copy())]))
    query = (exp.select(churned_at.copy(), first_red)
             .from_(churn_moments(ws, billing).subquery("c"))
             .join(exp.alias_(exp.to_table("bt_health"), "h"), join_type="left",
                   on=col("entity_id", "h").eq(col("__account", "c")))
             .join(exp.alias_(exp.to_table("bt_runs"), "r"), join_type="left",
                   on=col("run_id", "r").eq(col("run_id", "h")))
             .where(churned_at.copy() >= exp.Add(this=moment(first), expression=seconds.copy()))
             .where(churned_at.copy() <= moment(last))
             .group_by(col("__account", "c"), churned_at.copy()))
    rows = _rows(ws, query)
    days = tuple(sorted((c - r).total_seconds() / 86400 for c, r in rows if r is not None))
    return LeadTime(len(rows), len(days), days, stats.wilson(len(days), len(rows), confidence))
