"""Everything the report shows, gathered from history, the results and the measures.

Each part is plain data (lists of tuples and the measure package's results), so the charts
never query anything, and a part that cannot be computed yet (no history, no measures) says
why instead of failing the whole report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlglot import exp

from retainer.compile.sql import alias, col
from retainer.errors import RetainerError, ValidationError
from retainer.measure import billing
from retainer.measure.backtest import Backtest, run_backtest
from retainer.measure.checks import check_measures
from retainer.measure.groups import grouping
from retainer.measure.metrics import MeasureResult, compute, default_as_of
from retainer.measure.uplift import NO_PLAYBOOKS, Uplift, uplifts
from retainer.measure.workspace import Workspace, open_workspace
from retainer.project import Project, utc_now

QUALITY_COLUMNS = ("source", "rows_read", "missing_id", "duplicate_id", "unknown_id",
                   "bad_time", "after_as_of", "future_dated")


@dataclass(frozen=True)
class Curve:
    group: str
    days: tuple[float, ...]
    retained: tuple[float, ...]
    n: int


@dataclass(frozen=True)
class RetentionCurves:
    measure: str
    by: str
    cohort: datetime
    curves: tuple[Curve, ...]


@dataclass
class ReportData:
    project: str
    generated: datetime
    as_of: datetime | None
    observed_until: datetime
    dates: list[datetime] = field(default_factory=list)            # runs in history
    sizes: dict[str, list[tuple[datetime, str, int]]] = field(default_factory=dict)
    segment_order: dict[str, tuple[str, ...]] = field(default_factory=dict)  # rule order
    flows: tuple[str, datetime, datetime, list[tuple[str, str, int]]] | None = None
    health_now: list[tuple[float, str]] = field(default_factory=list)
    health_bands: list[str] = field(default_factory=list)          # lowest first
    health_trend: list[tuple[datetime, float, float, float]] = field(default_factory=list)
    band_trend: list[tuple[datetime, str, int]] = field(default_factory=list)
    measures: list[MeasureResult] = field(default_factory=list)
    measure_errors: dict[str, str] = field(default_factory=dict)
    retention: list[RetentionCurves] = field(default_factory=list)
    backtest: Backtest | None = None
    backtest_error: str | None = None
    uplifts: list[Uplift] = field(default_factory=list)
    uplift_note: str = NO_PLAYBOOKS
    quality: list[tuple[Any, ...]] = field(default_factory=list)   # QUALITY_COLUMNS
    quality_as_of: datetime | None = None
    quality_trend: list[tuple[datetime, int, int]] = field(default_factory=list)


def gather(project: Project, horizon: timedelta = timedelta(days=90),
           as_of: datetime | None = None) -> ReportData:
    check_measures(project.rulebook)
    with open_workspace(project) as ws:
        latest = as_of or ws.latest
        data = ReportData(project.rulebook.config.name, utc_now(), latest, ws.observed_until)
        if _has_history(ws):
            _history(ws, data)
        _health_now(ws, data, latest)
        for name in project.rulebook.measures:
            try:
                data.measures.append(compute(ws, name, as_of))
            except ValidationError:
                raise
            except RetainerError as exc:
                data.measure_errors[name] = exc.problem.message
        _retention(ws, data, as_of)
        try:
            data.backtest = run_backtest(ws, None, None, None, horizon, None, None,
                                         "cancelled_at") if data.dates else None
            if data.backtest is None:
                data.backtest_error = ("no history yet: fill it with 'retainer backfill "
                                       "--from D1 --to D2 --every 7d'")
        except RetainerError as exc:
            data.backtest_error = exc.problem.message + (
                f" ({exc.problem.hint})" if exc.problem.hint else "")
        data.uplifts = uplifts(project.rulebook)
        _quality(ws, data)
    return data


def _has_history(ws: Workspace) -> bool:
    return ws.history_as_of is not None


def _history(ws: Workspace, data: ReportData) -> None:
    rulebook = ws.rulebook
    dimensions = [n for n, d in rulebook.dimensions.items() if d.entity == "account"]
    data.segment_order = {n: tuple(r.segment for r in rulebook.dimensions[n].rules)
                          for n in dimensions}
    runs = exp.select("run_id", "as_of").from_("runs").where(col("in_history"))
    at = col("as_of", "r")
    sizes = (exp.select(at, col("dimension", "m"), col("segment", "m"),
                        exp.Count(this=exp.Star()))
             .from_(runs.subquery("r"))
             .join(exp.alias_(exp.to_table("memberships"), "m"),
                   on=exp.and_(col("entered_at", "m") <= at.copy(),
                               exp.or_(col("exited_at", "m").is_(exp.null()),
                                       col("exited_at", "m") > at.copy())))
             .where(col("level", "m").eq(exp.Literal.string("account")))
             .where(col("dimension", "m").isin(*(exp.Literal.string(d) for d in dimensions)))
             .group_by(at.copy(), col("dimension", "m"), col("segment", "m")))
    health = (exp.select(alias(col("as_of", "r"), "as_of"), col("score", "h"), col("band", "h"))
              .from_(exp.alias_(exp.to_table("health"), "h"))
              .join(runs.subquery("r"), on=col("run_id", "r").eq(col("run_id", "h"))))
    with ws.project.store() as store:
        data.dates = sorted(r[0] for r in store.backend.fetch(exp.select("as_of").from_(
            "runs").where(col("in_history"))))
        for when, dimension, segment, count in store.backend.fetch(sizes):
            data.sizes.setdefault(str(dimension), []).append((when, str(segment), int(count)))
        if dimensions and len(data.dates) > 1:
            main = next((n for n in dimensions if rulebook.dimensions[n].state_machine), None)
            main = main or dimensions[0]
            flows = store.flows(data.dates[0], data.dates[-1], main)
            data.flows = (main, data.dates[0], data.dates[-1],
                          [(a or "(absent)", b or "(absent)", n) for a, b, n in flows])
        if rulebook.health is not None:
            ws.register("rp_health", store.backend.fetch_arrow(health))
    for rows in data.sizes.values():
        rows.sort()
    if rulebook.health is not None:
        score = col("score")
        quartiles = exp.Anonymous(this="quantile_cont", expressions=[score, exp.Array(
            expressions=[exp.Literal.number(q) for q in (0.25, 0.5, 0.75)])])
        for when, values in ws.rows(exp.select("as_of", quartiles).from_("rp_health")
                                    .where(score.copy().is_(exp.null()).not_())
                                    .group_by("as_of").order_by("as_of")):
            data.health_trend.append((when, *(float(v) for v in values)))
        data.band_trend = [(w, str(b), int(n)) for w, b, n in ws.rows(
            exp.select("as_of", "band", exp.Count(this=exp.Star())).from_("rp_health")
            .where(col("band").is_(exp.null()).not_())
            .group_by("as_of", "band").order_by("as_of", "band"))]


def _health_now(ws: Workspace, data: ReportData, as_of: datetime) -> None:
    health = ws.rulebook.health
    if health is None:
        return
    data.health_bands = [name for name, _ in reversed(health.ordered_bands())]
    snapshot = ws.snapshot(as_of)
    data.health_now = [(float(s), str(b)) for s, b in ws.rows(
        exp.select("health", "health_band").from_(snapshot)
        .where(col("health").is_(exp.null()).not_()))]


def _retention(ws: Workspace, data: ReportData, as_of: datetime | None) -> None:
    """Retention curves of each logo-retention measure's groups: the share of a cohort of
    paying accounts still paying k days later, over the measure's horizon."""
    for name, measure in ws.rulebook.measures.items():
        if measure.metric != "logo_retention" or measure.horizon is None:
            continue
        try:
            data.retention.append(_curves(ws, name, measure.horizon, as_of))
        except RetainerError as exc:
            data.measure_errors.setdefault(name, exc.problem.message)


def _curves(ws: Workspace, name: str, horizon: timedelta, as_of: datetime | None
            ) -> RetentionCurves:
    measure = ws.rulebook.measures[name]
    cohort = as_of or default_as_of(ws, measure)
    step = max(1, horizon.days // 30)
    days = list(range(0, horizon.days + 1, step))
    if days[-1] != horizon.days:
        days.append(horizon.days)
    days = [d for d in days if cohort + timedelta(days=d) <= ws.observed_until] or [0]
    source = measure.source or ws.rulebook.source_of_kind("subscriptions") or ""
    spec = billing.checked(ws, billing.Billing(source, measure.cancelled), None)
    pairs = billing.dates(*((cohort, cohort + timedelta(days=d)) for d in days))
    groups = grouping(ws.rulebook, measure.by)
    snapshot = ws.snapshot(cohort)
    query = (exp.select(alias(groups.expression, "grp"), col("__later", "a"),
                        exp.Count(this=exp.Star()),
                        exp.Sum(this=exp.Case(ifs=[exp.If(this=col("__active_later", "a"),
                                                          true=exp.Literal.number(1))],
                                              default=exp.Literal.number(0))))
             .from_(billing.activity(ws, spec, pairs).subquery("a"))
             .join(exp.alias_(exp.to_table(snapshot), "r"),
                   on=exp.cast(col(ws.key, "r"), "VARCHAR").eq(col("__account", "a")))
             .where(col("__active_now", "a"))
             .group_by(groups.expression.copy(), col("__later", "a")))
    found: dict[str, dict[datetime, tuple[int, int]]] = {}
    for group, later, n, kept in ws.rows(query):
        found.setdefault(str(group), {})[later] = (int(n), int(kept))
    curves = []
    for group in groups.sort(list(found)):
        points = sorted(found[group].items())
        n = points[0][1][0]
        curves.append(Curve(group, tuple((p - cohort).total_seconds() / 86400
                                         for p, _ in points),
                            tuple(k / c if c else 0.0 for _, (c, k) in points), n))
    return RetentionCurves(name, groups.label, cohort, tuple(curves))


def _quality(ws: Workspace, data: ReportData) -> None:
    """Rows read and rejected per source at the latest run, and per run over time."""
    if ws.history_as_of is None and ws.published_as_of is None:
        return
    columns = [col(c) for c in QUALITY_COLUMNS]
    if ws.history_as_of is not None:
        with ws.project.store() as store:
            runs = store.backend.fetch(
                exp.select("run_id", "as_of", "rows_read", "rows_rejected").from_("runs")
                .where(col("status").eq(exp.Literal.string("succeeded"))).order_by("as_of"))
            latest = max(runs, key=lambda r: (r[1], r[0])) if runs else None
            data.quality_trend = [(r[1], int(r[2] or 0), int(r[3] or 0)) for r in runs]
            if latest is not None:
                data.quality_as_of = latest[1]
                data.quality = list(store.backend.fetch(
                    exp.select(*columns).from_("quality")
                    .where(col("run_id").eq(exp.Literal.number(latest[0])))
                    .order_by("source")))
                return
    data.quality_as_of = ws.published_as_of
    table = exp.table_("data_quality", db="main", catalog="published")
    data.quality = ws.rows(exp.select(*columns).from_(table).order_by("source"))


def rejected(row: tuple[Any, ...]) -> int:
    """Rows of a quality record that could not be used (not those merely after as_of)."""
    return sum(int(row[i] or 0) for i in range(2, 6))


__all__ = ["Curve", "ReportData", "RetentionCurves", "gather", "rejected"]
