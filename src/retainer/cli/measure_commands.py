"""Measurement commands: `measure`, `backtest`, `report` (registered in cli/main.py).

Heavy modules (duckdb, plotly) are imported inside the commands so `--help` stays fast.
"""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from retainer.cli.common import ProjectOption, console, friendly

if TYPE_CHECKING:
    from retainer.measure.backtest import Backtest
    from retainer.measure.metrics import MeasureResult

JsonOption = Annotated[bool, typer.Option("--json", help="print JSON instead of tables")]
AsOfOption = Annotated[str | None, typer.Option(
    "--as-of", help="measure as of this UTC date or time; default: the latest results (for "
                    "outcomes over a horizon, the latest date whose horizon is observed)")]


def _duration(text: str, option: str) -> timedelta:
    from retainer.errors import RetainerError
    from retainer.rulebook.windows import parse_duration
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise RetainerError(f"{option}: {exc}") from None


def _moment(text: str | None, option: str = "--as-of") -> datetime | None:
    from retainer.project import parse_as_of
    return None if text is None else parse_as_of(text, option)


@friendly
def measure(names: Annotated[list[str] | None, typer.Argument(
                help="measures to compute (default: every measure in the rulebook)")] = None,
            project: ProjectOption = Path("."), as_of: AsOfOption = None,
            as_json: JsonOption = False) -> None:
    """Measures inside segments, each with its sample size and confidence interval."""
    from retainer.measure import measure as compute
    from retainer.project import Project
    loaded = Project(project)
    if not loaded.rulebook.measures and not names:
        console.print("no measures in the rulebook yet (add a 'measures:' section, see "
                      "docs/measures.md)")
        return
    results = compute(loaded, names, _moment(as_of))
    if as_json:
        typer.echo(json.dumps([_jsonable(r) for r in results], indent=2))
        return
    for result in results:
        measure_table(result)


def measure_table(result: MeasureResult) -> None:
    from retainer.measure.formatting import figure_text
    horizon = f", horizon {result.horizon.days}d" if result.horizon else ""
    console.print(Text.assemble((result.name, "bold"), f": {result.metric} by {result.by} — "
                                f"as of {result.as_of:%Y-%m-%d}{horizon}"))
    table = Table(show_edge=False)
    level = f"{100 * result.confidence:g}% interval"
    for column in ("group", result.metric, level, "n", ""):
        table.add_column(column, justify="left" if column in ("group", "") else "right")
    for figure in (*result.figures, result.total) if len(result.figures) > 1 else \
            result.figures:
        value, interval = figure_text(result.unit, figure.value, figure.low, figure.high)
        style = "bold" if figure is result.total else ""
        table.add_row(Text(figure.group, style=style), Text(value, style=style), interval,
                      f"{figure.n:,}", Text("small group", style="yellow")
                      if figure.small else "")
    console.print(table)
    console.print(Text(f"  {result.method}", style="dim"))
    for note in result.notes:
        console.print(Text(f"  note: {note}", style="yellow"))


@friendly
def backtest(start: Annotated[str | None, typer.Option(
                 "--from", help="first as_of date (default: the first run in history)")] = None,
             end: Annotated[str | None, typer.Option(
                 "--to", help="last as_of date (default: the latest run)")] = None,
             project: ProjectOption = Path("."),
             every: Annotated[str | None, typer.Option(
                 help="only dates --from, --from + every, … (e.g. 7d)")] = None,
             horizon: Annotated[str, typer.Option(
                 help="churn within this long after each date counts")] = "90d",
             segment: Annotated[str | None, typer.Option(
                 help="the at-risk segment to score, DIMENSION.SEGMENT "
                      "(default: a segment called at_risk)")] = None,
             source: Annotated[str | None, typer.Option(
                 help="the subscriptions source that says who churned")] = None,
             cancelled: Annotated[str, typer.Option(
                 help="its cancellation time column")] = "cancelled_at",
             as_json: JsonOption = False) -> None:
    """How well past health scores, bands and the at-risk segment predicted churn."""
    from retainer.measure.backtest import backtest as run_backtest
    from retainer.project import Project
    result = run_backtest(Project(project), _moment(start, "--from"),
                          _moment(end, "--to"),
                          _duration(every, "--every") if every else None,
                          _duration(horizon, "--horizon"), segment, source, cancelled)
    if as_json:
        typer.echo(json.dumps(_jsonable(result), indent=2))
        return
    backtest_tables(result)


def backtest_tables(result: Backtest) -> None:
    from retainer.measure.formatting import percent, share_interval
    auc = result.roc.auc
    console.print(Text.assemble(
        ("Health backtest", "bold"),
        f" — {len(result.dates)} dates from {result.dates[0]:%Y-%m-%d} to "
        f"{result.dates[-1]:%Y-%m-%d}, horizon {result.horizon.days}d: "
        f"{result.observations:,} account-dates, {result.churned:,} churned "
        f"({percent(result.base_rate)})"))
    console.print(Text.assemble(("ROC AUC ", "bold"), (f"{auc.value:.3f}", "bold cyan")
                                if auc.value is not None else "–",
                                f"  (95% interval {auc.low:.3f}–{auc.high:.3f}, "
                                "Hanley–McNeil)" if auc.low is not None and
                                auc.high is not None else ""))
    table = Table(title="bands", title_justify="left", show_edge=False)
    for column in ("band", "account-dates", "churned", "churn rate (precision)", "recall",
                   "lift", "this band or lower: precision", "recall"):
        table.add_column(column, justify="left" if column == "band" else "right")
    for row in result.bands:
        table.add_row(row.band, f"{row.n:,}", f"{row.churned:,}", share_interval(row.churn_rate),
                      percent(row.recall), f"{row.lift:.2f}×",
                      share_interval(row.cumulative_precision),
                      share_interval(row.cumulative_recall))
    console.print(table)
    table = Table(title="flags", title_justify="left", show_edge=False)
    for column in ("flag", "flagged", "churned", "precision", "recall"):
        table.add_column(column, justify="left" if column == "flag" else "right")
    for flag in result.flags:
        table.add_row(flag.label, f"{flag.flagged:,}", f"{flag.churned:,}",
                      share_interval(flag.precision), share_interval(flag.recall))
    console.print(table)
    lead = result.lead
    median, (low, high) = lead.median, lead.quartiles
    console.print(Text.assemble(
        ("lead time: ", "bold"),
        f"{lead.caught} of {lead.churners} churners were red within the "
        f"{result.horizon.days} days before churning"
        + (f"; first red a median {median:.0f} days before (quartiles {low:.0f}–{high:.0f})"
           if median is not None and low is not None and high is not None else "")))
    table = Table(title="calibration", title_justify="left", show_edge=False)
    for column in ("health", "account-dates", "mean health", "churn rate"):
        table.add_column(column, justify="right")
    for cal in result.calibration:
        table.add_row(f"{cal.low:g}–{cal.high:g}", f"{cal.n:,}", f"{cal.mean_health:.1f}",
                      share_interval(cal.churn_rate))
    console.print(table)
    table = Table(title="components", title_justify="left", show_edge=False)
    for column in ("component", "observations", "AUC alone", "health AUC without it"):
        table.add_column(column, justify="left" if column == "component" else "right")
    for part in result.components:
        alone = "–" if part.auc_alone.value is None else f"{part.auc_alone.value:.3f}"
        without = "–" if part.auc_without is None else f"{part.auc_without:.3f}"
        table.add_row(part.name, f"{part.n:,}", alone, without)
    console.print(table)
    for note in result.notes:
        console.print(Text(f"note: {note}", style="yellow"))


@friendly
def report(project: ProjectOption = Path("."),
           output: Annotated[Path | None, typer.Option(
               "--output", "-o", help="where to write (default .retainer/report.html)")] = None,
           horizon: Annotated[str, typer.Option(
               help="the backtest's churn horizon")] = "90d",
           as_of: AsOfOption = None) -> None:
    """Write one self-contained HTML report (works offline): segments over time, flows,
    health, measures, the backtest, playbook uplift and data quality."""
    from retainer.project import Project
    from retainer.report import write_report
    loaded = Project(project)
    target = output or loaded.rulebook.path(".retainer/report.html")
    written = write_report(loaded, target, horizon=_duration(horizon, "--horizon"),
                           as_of=_moment(as_of))
    console.print(f"[green]✓[/] wrote {written} ({written.stat().st_size / 1e6:.1f} MB)")


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: _jsonable(getattr(value, f.name))
                  for f in dataclasses.fields(value)}
        for name in ("method", "base_rate"):
            if hasattr(value, name):
                fields[name] = getattr(value, name)
        return fields
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds() / 86400
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
