"""Health backtest: how well past health scores, bands and the at-risk segment predicted churn.

Each in-history run between two dates is an observation date t. Every account that was a
paying customer at t (an active subscription) is one observation: its health at t, its band,
its component scores, whether history had it in the at-risk segment at t, and whether it
churned within the horizon (active at t, not active at t + horizon). Dates whose horizon ends
after the latest observed data are left out, since their outcome is not known yet.

The same account appears once per date, so the figures describe the score as a CSM would have
used it week after week; intervals treat observations as independent and are therefore a
little narrow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlglot import exp

from retainer.compile.sql import alias, col
from retainer.errors import RetainerError, did_you_mean
from retainer.measure import stats
from retainer.measure.backtest_parts import (
    BandRow,
    CalibrationRow,
    ComponentRow,
    FlagRow,
    LeadTime,
    bands,
    calibration,
    components,
    flags,
    lead_time,
    roc_of,
)
from retainer.measure.billing import Billing, activity, checked, horizon_dates
from retainer.measure.workspace import Workspace, moment, open_workspace
from retainer.project import Project


@dataclass(frozen=True)
class Backtest:
    horizon: timedelta
    dates: tuple[datetime, ...]            # observation dates used
    observed_until: datetime
    observations: int
    churned: int
    roc: stats.Roc
    bands: tuple[BandRow, ...]
    flags: tuple[FlagRow, ...]
    calibration: tuple[CalibrationRow, ...]
    components: tuple[ComponentRow, ...]
    lead: LeadTime
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def base_rate(self) -> float:
        return self.churned / self.observations if self.observations else 0.0


def backtest(project: Project, start: datetime | None = None, end: datetime | None = None,
             every: timedelta | None = None, horizon: timedelta = timedelta(days=90),
             segment: str | None = None, source: str | None = None,
             cancelled: str = "cancelled_at", confidence: float = 0.95) -> Backtest:
    """Backtest the health score over the in-history runs from `start` to `end` (default:
    all); with `every`, only the dates start, start + every, … (each must have a run)."""
    with open_workspace(project) as ws:
        return run_backtest(ws, start, end, every, horizon, segment, source, cancelled,
                            confidence)


def run_backtest(ws: Workspace, start: datetime | None, end: datetime | None,
                 every: timedelta | None, horizon: timedelta, segment: str | None,
                 source: str | None, cancelled: str, confidence: float = 0.95) -> Backtest:
    health = ws.rulebook.health
    if health is None:
        raise RetainerError("the rulebook has no health score to backtest",
                            hint="add a 'health' section (docs/rulebook.md#health)")
    if horizon <= timedelta(0):
        raise RetainerError("the horizon must be a positive duration, e.g. 90d")
    if ws.history_as_of is None:
        raise RetainerError("no runs in history to backtest",
                            hint="fill history with 'retainer backfill --from D1 --to D2 "
                                 "--every 7d' first")
    notes: list[str] = []
    segment = _segment(ws, segment)
    runs = _runs(ws, start, end, every, notes)
    usable = [(run, at, names) for run, at, names in runs if at + horizon <= ws.observed_until]
    if len(usable) < len(runs):
        notes.append(f"{len(runs) - len(usable)} date(s) left out: their {horizon.days}-day "
                     f"horizon ends after the latest observed data "
                     f"({ws.observed_until:%Y-%m-%d})")
    if not usable:
        raise RetainerError(
            f"no date's {horizon.days}-day horizon has been observed yet (history runs to "
            f"{ws.observed_until:%Y-%m-%d})",
            hint="backfill earlier dates ('retainer backfill'), choose an earlier --to, or a "
                 "shorter --horizon")
    billing = checked(ws, Billing(source or _subscriptions(ws), cancelled), None)
    names = _component_names(usable)
    _load(ws, runs, {run for run, _, _ in usable}, names, billing, horizon, segment)
    lowest = min(health.bands.items(), key=lambda item: item[1])[0]
    roc = roc_of(ws, col("score"), confidence)
    band_rows = bands(ws, health, confidence)
    flag_rows = flags(ws, lowest, segment, confidence)
    total = roc.positives + roc.negatives
    if total == 0:
        raise RetainerError("no paying accounts at the backtest's dates",
                            hint=f"check the subscriptions source '{billing.source}'")
    weights = {n: c.weight for n, c in health.components.items()}
    lead = lead_time(ws, billing, [at for _, at, _ in runs], lowest, horizon)
    return Backtest(horizon, tuple(at for _, at, _ in usable), ws.observed_until, total,
                    roc.positives, roc, band_rows, flag_rows, calibration(ws, confidence),
                    components(ws, names, weights, confidence), lead, tuple(notes))


def _segment(ws: Workspace, segment: str | None) -> str | None:
    """`dimension.segment` checked against the rulebook; by default the account dimension
    segment called `at_risk`, if there is one."""
    dimensions = {n: d for n, d in ws.rulebook.dimensions.items() if d.entity == "account"}
    if segment is None:
        return next((f"{n}.at_risk" for n, d in dimensions.items()
                     if any(r.segment == "at_risk" for r in d.rules)), None)
    dimension, _, name = segment.partition(".")
    choices = [f"{n}.{r.segment}" for n, d in dimensions.items() for r in d.rules]
    if segment not in choices:
        raise RetainerError(f"no account segment '{segment}'",
                            hint=did_you_mean(segment, choices) or
                            "write DIMENSION.SEGMENT, e.g. " + (choices[0] if choices else
                                                                "lifecycle.at_risk"))
    return f"{dimension}.{name}"


def _subscriptions(ws: Workspace) -> str:
    name = ws.rulebook.source_of_kind("subscriptions")
    if name is None:
        raise RetainerError("a backtest needs to know who churned, and the project has no "
                            "source of kind 'subscriptions'",
                            hint="declare one, or name a source with --source")
    return name


def _runs(ws: Workspace, start: datetime | None, end: datetime | None,
          every: timedelta | None, notes: list[str]
          ) -> list[tuple[int, datetime, tuple[str, ...]]]:
    import json

    query = (exp.select("run_id", "as_of", "health_components").from_("runs")
             .where(col("in_history")).where(col("status").eq(exp.Literal.string("succeeded")))
             .order_by("as_of"))
    if start is not None:
        query = query.where(col("as_of") >= moment(start))
    if end is not None:
        query = query.where(col("as_of") <= moment(end))
    with ws.project.store() as store:
        found = [(int(r[0]), r[1], tuple(json.loads(r[2] or "[]")))
                 for r in store.backend.fetch(query)]
    if every is not None and found:
        if every <= timedelta(0):
            raise RetainerError("--every must be a positive duration, e.g. 7d")
        first = start or found[0][1]
        grid, at = [], first
        while at <= (end or found[-1][1]):
            grid.append(at)
            at += every
        by_date = {at: run for run in found for at in [run[1]]}
        missing = [d for d in grid if d not in by_date]
        if missing:
            notes.append(f"{len(missing)} date(s) without a run in history, e.g. "
                         f"{missing[0]:%Y-%m-%d} (fill them with 'retainer backfill')")
        found = [by_date[d] for d in grid if d in by_date]
    if not found:
        raise RetainerError("no runs in history for the backtest's dates",
                            hint="fill history with 'retainer backfill --from D1 --to D2 "
                                 "--every 7d' first")
    return found


def _component_names(runs: Sequence[tuple[int, datetime, tuple[str, ...]]]) -> list[str]:
    names: list[str] = []
    for _, _, listed in reversed(runs):
        names += [n for n in listed if n not in names]
    return names


def _load(ws: Workspace, runs: Sequence[tuple[int, datetime, tuple[str, ...]]],
          usable: set[int], names: Sequence[str], billing: Billing, horizon: timedelta,
          segment: str | None) -> None:
    """Load the runs' health (`bt_health`, `bt_runs`) and build `bt_obs`: one row per paying
    account per usable date, with score, band, components, the segment flag and whether it
    churned within the horizon."""
    ids = [exp.Literal.number(run) for run, _, _ in runs]
    observed = [at for run, at, _ in runs if run in usable]
    with ws.project.store() as store:
        ws.register("bt_health", store.backend.fetch_arrow(
            exp.select("run_id", "entity_id", "score", "band", "components").from_("health")
            .where(col("run_id").isin(*ids))))
        if segment is not None:
            dimension, _, name = segment.partition(".")
            ws.register("bt_flagged", store.backend.fetch_arrow(
                exp.select("entity_id", "entered_at", "exited_at").from_("memberships")
                .where(col("level").eq(exp.Literal.string("account")))
                .where(col("dimension").eq(exp.Literal.string(dimension)))
                .where(col("segment").eq(exp.Literal.string(name)))))
    listed = [exp.Tuple(expressions=[exp.Literal.number(run), moment(at), exp.cast(
        exp.Array(expressions=[exp.Literal.string(n) for n in comps]), "VARCHAR[]")])
              for run, at, comps in runs]
    ws.create_table("bt_runs", exp.select("run_id", "as_of", "names").from_(exp.Values(
        expressions=listed, alias=exp.TableAlias(this=exp.to_identifier("v"), columns=[
            exp.to_identifier(c) for c in ("run_id", "as_of", "names")]))))
    ws.create_table("bt_activity", activity(ws, billing, horizon_dates(observed, horizon)))

    def component(name: str) -> exp.Expr:
        position = exp.Anonymous(this="list_position", expressions=[
            col("names", "r"), exp.Literal.string(name)])
        return exp.Anonymous(this="list_extract", expressions=[col("components", "h"), position])

    flagged: exp.Expr = exp.false()
    if segment is not None:
        at = col("as_of", "r")
        flagged = exp.Exists(this=exp.select(exp.Literal.number(1)).from_(
            exp.alias_(exp.to_table("bt_flagged"), "f"))
            .where(col("entity_id", "f").eq(col("entity_id", "h")))
            .where(col("entered_at", "f") <= at)
            .where(exp.or_(col("exited_at", "f").is_(exp.null()),
                           col("exited_at", "f") > at.copy())))
    query = (exp.select(alias(col("as_of", "r"), "as_of"),
                        alias(col("entity_id", "h"), "entity_id"),
                        alias(col("score", "h"), "score"), alias(col("band", "h"), "band"),
                        alias(exp.Not(this=col("__active_later", "a")), "churned"),
                        alias(flagged, "flagged"),
                        *(alias(exp.cast(component(n), "DOUBLE"), f"c{i}")
                          for i, n in enumerate(names)))
             .from_(exp.alias_(exp.to_table("bt_health"), "h"))
             .join(exp.alias_(exp.to_table("bt_runs"), "r"),
                   on=col("run_id", "r").eq(col("run_id", "h")))
             .join(exp.alias_(exp.to_table("bt_activity"), "a"),
                   on=exp.and_(col("__account", "a").eq(col("entity_id", "h")),
                               col("__date", "a").eq(col("as_of", "r"))))
             .where(col("__active_now", "a"))
             .where(col("score", "h").is_(exp.null()).not_()))
    ws.create_table("bt_obs", query)
