"""Compute declared measures: one SQL aggregate per measure, grouped with a total, then each
group's estimate and confidence interval from those sums (see stats.py for the methods).

Every figure carries its sample size; a group smaller than the measure's `min_sample`
(30 by default) is flagged, never hidden.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlglot import exp

from retainer.compile.sql import alias, col
from retainer.errors import RetainerError, did_you_mean
from retainer.measure import billing, stats, surveys
from retainer.measure.groups import ALL, Grouping, column_name, grouping
from retainer.measure.workspace import Workspace
from retainer.rulebook.measure_models import BILLING_METRICS, Measure

Unit = Literal["nps", "share", "ratio", "mean"]
METHODS = {
    "nps": "normal approximation (NPS is 100 × the mean of +1 / 0 / −1 per respondent)",
    "share": "Wilson score interval",
    "ratio": "ratio of sums, delta-method normal approximation",
    "mean": "normal approximation (mean ± z·s/√n)",
}
UNITS: dict[str, Unit] = {
    "nps": "nps", "csat": "share", "logo_retention": "share", "expansion_rate": "share",
    "gross_revenue_retention": "ratio", "net_revenue_retention": "ratio", "mean": "mean",
    "rate": "share",
}


@dataclass(frozen=True)
class Figure:
    group: str
    n: int
    value: float | None
    low: float | None
    high: float | None
    small: bool
    counts: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class MeasureResult:
    name: str
    metric: str
    by: str
    as_of: datetime
    horizon: timedelta | None
    unit: Unit
    confidence: float
    min_sample: int
    figures: tuple[Figure, ...]
    total: Figure
    notes: tuple[str, ...] = ()
    description: str | None = None

    @property
    def method(self) -> str:
        return METHODS[self.unit]


def default_as_of(ws: Workspace, measure: Measure) -> datetime:
    """The latest results; for outcomes over a horizon, the latest date whose horizon has
    been observed in full."""
    if measure.metric in BILLING_METRICS and measure.horizon is not None:
        return min(ws.latest, ws.observed_until - measure.horizon)
    return ws.latest


def compute(ws: Workspace, name: str, as_of: datetime | None = None) -> MeasureResult:
    if name not in ws.rulebook.measures:
        raise RetainerError(f"no measure '{name}' in the rulebook",
                            hint=did_you_mean(name, ws.rulebook.measures) or
                            "measures: " + (", ".join(ws.rulebook.measures) or "none yet"))
    measure = ws.rulebook.measures[name]
    moment = as_of or default_as_of(ws, measure)
    snapshot = ws.snapshot(moment)
    groups = grouping(ws.rulebook, measure.by)
    units, aggregates, estimate = _METRICS[measure.metric](ws, name, measure, moment, snapshot)
    rows = _grouped(ws, snapshot, groups, units, aggregates)
    total_row = rows.pop(None, None) or {}
    notes = _notes(ws, measure, moment)

    def figure(group: str, row: dict[str, Any]) -> Figure:
        n = int(row.get("n") or 0)
        value, counts = estimate(row, measure.confidence)
        return Figure(group, n, value.value, value.low, value.high, n < measure.min_sample,
                      counts)

    total = figure(ALL, total_row)
    figures = [figure(g, rows[g]) for g in groups.sort([g for g in rows if g is not None])]
    if measure.by is None:
        figures = [total]
    small = sum(f.small for f in figures)
    if small and measure.by is not None:
        notes.append(f"{small} group(s) with fewer than {measure.min_sample} "
                     "observations: shown, and flagged as small")
    return MeasureResult(name, measure.metric, groups.label, moment, measure.horizon,
                         UNITS[measure.metric], measure.confidence, measure.min_sample,
                         tuple(figures), total, tuple(notes), measure.description)


def _notes(ws: Workspace, measure: Measure, as_of: datetime) -> list[str]:
    notes = []
    if measure.metric in BILLING_METRICS and measure.horizon is not None:
        ends = as_of + measure.horizon
        if ends > ws.observed_until:
            notes.append(f"incomplete: the horizon ends {ends:%Y-%m-%d}, after the latest "
                         f"observed data ({ws.observed_until:%Y-%m-%d}); accounts that churn "
                         "later count as retained")
    return notes


def _grouped(ws: Workspace, snapshot: str, groups: Grouping, units: exp.Select | None,
             aggregates: Sequence[tuple[str, exp.Expr]]) -> dict[str | None, dict[str, Any]]:
    """Aggregates per group plus the total (the `None` group) in one ROLLUP query."""
    accounts = exp.alias_(exp.to_table(snapshot), "r")
    if units is None:
        query = exp.select().from_(accounts)
    else:
        query = exp.select().from_(units.subquery("u")).join(
            accounts, on=exp.cast(col(ws.key, "r"), "VARCHAR").eq(col("__account", "u")))
    query = query.select(alias(groups.expression, "__group"),
                         *(alias(e, n) for n, e in aggregates)).group_by(
        exp.Rollup(expressions=[groups.expression.copy()]))
    names = ["__group", *(n for n, _ in aggregates)]
    found: dict[str | None, dict[str, Any]] = {}
    for row in ws.rows(query):
        values = dict(zip(names, row, strict=True))
        found[values.pop("__group")] = values
    return found


def _count_if(condition: exp.Expr) -> exp.Expr:
    return exp.Sum(this=exp.Case(ifs=[exp.If(this=condition, true=exp.Literal.number(1))],
                                 default=exp.Literal.number(0)))


def _num(row: dict[str, Any], key: str) -> float:
    return float(row.get(key) or 0)


Estimator = Callable[[dict[str, Any], float], tuple[stats.Estimate, dict[str, float]]]
Metric = Callable[[Workspace, str, Measure, datetime, str],
                  tuple[exp.Select | None, list[tuple[str, exp.Expr]], Estimator]]


def _nps(ws: Workspace, name: str, measure: Measure, as_of: datetime, snapshot: str
         ) -> tuple[exp.Select | None, list[tuple[str, exp.Expr]], Estimator]:
    score = col("__score", "u")
    aggregates = [("n", exp.Count(this=exp.Star())),
                  ("promoters", _count_if(score >= surveys.PROMOTER)),
                  ("detractors", _count_if(score.copy() <= surveys.DETRACTOR))]

    def estimate(row: dict[str, Any], confidence: float
                 ) -> tuple[stats.Estimate, dict[str, float]]:
        n, plus, minus = _num(row, "n"), _num(row, "promoters"), _num(row, "detractors")
        return stats.nps(plus, minus, n, confidence), {
            "promoters": plus, "passives": n - plus - minus, "detractors": minus}

    return surveys.answers(ws, name, measure, as_of), aggregates, estimate


def _csat(ws: Workspace, name: str, measure: Measure, as_of: datetime, snapshot: str
          ) -> tuple[exp.Select | None, list[tuple[str, exp.Expr]], Estimator]:
    score = col("__score", "u")
    aggregates = [("n", exp.Count(this=exp.Star())),
                  ("satisfied", _count_if(score >= exp.Literal.number(measure.satisfied))),
                  ("mean_score", exp.Avg(this=score.copy()))]

    def estimate(row: dict[str, Any], confidence: float
                 ) -> tuple[stats.Estimate, dict[str, float]]:
        return stats.wilson(_num(row, "satisfied"), _num(row, "n"), confidence), {
            "satisfied": _num(row, "satisfied"), "mean score": _num(row, "mean_score")}

    return surveys.answers(ws, name, measure, as_of), aggregates, estimate


def _billing_units(ws: Workspace, name: str, measure: Measure, as_of: datetime,
                   revenue: bool) -> exp.Select:
    assert measure.horizon is not None
    source = measure.source or ws.rulebook.source_of_kind("subscriptions")
    assert source is not None  # checked with the rulebook
    origin = ws.rulebook.origins.get(("measures", name))
    spec = billing.checked(ws, billing.Billing(source, measure.cancelled,
                                               measure.revenue if revenue else None),
                           origin.location if origin else None)
    units = billing.activity(ws, spec, billing.horizon_dates([as_of], measure.horizon))
    condition: exp.Expr = col("__active_now", "a")
    if revenue:
        condition = exp.and_(condition, col("__mrr_now", "a") > 0)
    return exp.select(exp.Star()).from_(units.subquery("a")).where(condition)


def _retention(ws: Workspace, name: str, measure: Measure, as_of: datetime, snapshot: str
               ) -> tuple[exp.Select | None, list[tuple[str, exp.Expr]], Estimator]:
    aggregates = [("n", exp.Count(this=exp.Star())),
                  ("retained", _count_if(col("__active_later", "u")))]

    def estimate(row: dict[str, Any], confidence: float
                 ) -> tuple[stats.Estimate, dict[str, float]]:
        n, kept = _num(row, "n"), _num(row, "retained")
        return stats.wilson(kept, n, confidence), {"retained": kept, "churned": n - kept}

    return _billing_units(ws, name, measure, as_of, revenue=False), aggregates, estimate


def _revenue(ws: Workspace, name: str, measure: Measure, as_of: datetime, snapshot: str
             ) -> tuple[exp.Select | None, list[tuple[str, exp.Expr]], Estimator]:
    x, later = col("__mrr_now", "u"), col("__mrr_later", "u")
    gross = measure.metric == "gross_revenue_retention"
    # Gross retention counts no account above its starting revenue: expansion is left out.
    y = exp.Least(this=later, expressions=[x.copy()]) if gross else later
    aggregates: list[tuple[str, exp.Expr]] = [
        ("n", exp.Count(this=exp.Star())), ("x", exp.Sum(this=x.copy())),
                  ("y", exp.Sum(this=y.copy())), ("xx", exp.Sum(this=x.copy() * x.copy())),
                  ("yy", exp.Sum(this=y.copy() * y.copy())),
                  ("xy", exp.Sum(this=x.copy() * y.copy()))]

    def estimate(row: dict[str, Any], confidence: float
                 ) -> tuple[stats.Estimate, dict[str, float]]:
        sums = stats.RatioSums(*(_num(row, k) for k in ("n", "x", "y", "xx", "yy", "xy")))
        ratio = stats.ratio(sums, confidence)
        if gross and ratio.high is not None:  # gross retention never exceeds 100%
            ratio = stats.Estimate(ratio.value, ratio.low, min(ratio.high, 1.0))
        return ratio, {"revenue at start": sums.x, "revenue at horizon": sums.y}

    return _billing_units(ws, name, measure, as_of, revenue=True), aggregates, estimate


def _expansion(ws: Workspace, name: str, measure: Measure, as_of: datetime, snapshot: str
               ) -> tuple[exp.Select | None, list[tuple[str, exp.Expr]], Estimator]:
    aggregates = [("n", exp.Count(this=exp.Star())),
                  ("expanded", _count_if(col("__mrr_later", "u") > col("__mrr_now", "u")))]

    def estimate(row: dict[str, Any], confidence: float
                 ) -> tuple[stats.Estimate, dict[str, float]]:
        return stats.wilson(_num(row, "expanded"), _num(row, "n"), confidence), {
            "expanded": _num(row, "expanded")}

    return _billing_units(ws, name, measure, as_of, revenue=True), aggregates, estimate


def _trait_column(ws: Workspace, name: str, measure: Measure, snapshot: str,
                  numeric: bool) -> exp.Expr:
    assert measure.trait is not None
    column = column_name(measure.trait)
    kind = ws.columns(snapshot).get(column, "")
    fits = kind.startswith(("DOUBLE", "BIGINT", "INT", "DECIMAL", "FLOAT", "HUGEINT",
                            "SMALLINT", "TINYINT", "UBIGINT", "UINTEGER", "REAL")) \
        if numeric else kind == "BOOLEAN"
    if not fits:
        origin = ws.rulebook.origins.get(("measures", name))
        what = "a number" if numeric else "yes/no (a condition or a tag)"
        raise RetainerError(f"measure '{name}': '{measure.trait}' is {kind or 'missing'}, and "
                            f"a {measure.metric} needs {what}",
                            location=origin.at("trait") if origin else None,
                            hint="use 'mean' for numbers and 'rate' for yes/no values")
    return col(column, "r")


def _mean(ws: Workspace, name: str, measure: Measure, as_of: datetime, snapshot: str
          ) -> tuple[exp.Select | None, list[tuple[str, exp.Expr]], Estimator]:
    value = exp.cast(_trait_column(ws, name, measure, snapshot, numeric=True), "DOUBLE")
    aggregates: list[tuple[str, exp.Expr]] = [
        ("n", exp.Count(this=value)), ("mean", exp.Avg(this=value.copy())),
                  ("variance", exp.Variance(this=value.copy()))]

    def estimate(row: dict[str, Any], confidence: float
                 ) -> tuple[stats.Estimate, dict[str, float]]:
        mean = row.get("mean")
        variance = row.get("variance")
        return stats.mean_interval(_num(row, "n"), None if mean is None else float(mean),
                                   None if variance is None else float(variance),
                                   confidence), {}

    return None, aggregates, estimate


def _rate(ws: Workspace, name: str, measure: Measure, as_of: datetime, snapshot: str
          ) -> tuple[exp.Select | None, list[tuple[str, exp.Expr]], Estimator]:
    value = _trait_column(ws, name, measure, snapshot, numeric=False)
    aggregates: list[tuple[str, exp.Expr]] = [("n", exp.Count(this=value)),
                                              ("yes", _count_if(value.copy()))]

    def estimate(row: dict[str, Any], confidence: float
                 ) -> tuple[stats.Estimate, dict[str, float]]:
        return stats.wilson(_num(row, "yes"), _num(row, "n"), confidence), {
            "yes": _num(row, "yes")}

    return None, aggregates, estimate


_METRICS: dict[str, Metric] = {
    "nps": _nps, "csat": _csat, "logo_retention": _retention,
    "gross_revenue_retention": _revenue, "net_revenue_retention": _revenue,
    "expansion_rate": _expansion, "mean": _mean, "rate": _rate,
}
