"""History commands: `runs`, `history`, `flows`, `backfill`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import JustifyMethod
from rich.table import Table
from rich.text import Text

from retainer.cli.common import STATUS_STYLE, ProjectOption, console, fitted_table, friendly
from retainer.cli.main import app
from retainer.cli.render import value


def _moment(text: str, option: str) -> datetime:
    from retainer.project import parse_as_of
    return parse_as_of(text, option)


@app.command()
@friendly
def runs(project: ProjectOption = Path("."),
         limit: Annotated[int, typer.Option(min=1, help="how many, newest first")] = 20) -> None:
    """List recorded runs: as_of, outcome, rows read and rejected, rulebook version."""
    from retainer.project import Project
    with Project(project).store() as store:
        records = store.runs(limit)
    right: JustifyMethod = "right"
    columns: dict[str, JustifyMethod] = {
        "run": right, "kind": "left", "as of": "left", "status": "left", "history": "left",
        "read": right, "rejected": right, "secs": right, "rulebook": "left", "commit": "left"}
    rows = [{"run": str(run.run_id), "kind": run.kind,
             "as of": run.as_of.strftime("%Y-%m-%d" if run.as_of.time() == datetime.min.time()
                                         else "%Y-%m-%d %H:%M"),
             "status": Text(run.status, style=STATUS_STYLE.get(run.status, "dim")),
             "history": "yes" if run.in_history else "–", "read": f"{run.rows_read or 0:,}",
             "rejected": f"{run.rows_rejected or 0:,}", "secs": f"{run.duration_s or 0:.1f}",
             "rulebook": run.rulebook_hash[:8], "commit": (run.git_commit or "–")[:8]}
            for run in records]
    # Left out first where the terminal is narrow: the least needed to tell runs apart.
    table = fitted_table(columns, rows, ("commit", "rulebook", "secs", "history"))
    console.print(table if records else "no runs yet")


@app.command()
@friendly
def history(entity_id: Annotated[str, typer.Argument(help="account id (or contact id)")],
            project: ProjectOption = Path("."),
            contact: Annotated[bool, typer.Option(help="a contact's history")] = False) -> None:
    """The timeline of an account: every segment and tag it entered and left, and why."""
    from retainer.project import Project
    level = "contact" if contact else "account"
    with Project(project).store() as store:
        intervals = store.history(entity_id, level)
        series = store.health_series(entity_id) if level == "account" else []
    if not intervals:
        console.print(f"no history for {level} '{entity_id}'")
        raise typer.Exit(1)
    table = Table(title=f"{level} {entity_id}", title_justify="left", show_edge=False)
    for column in ("dimension", "segment", "from", "until", "why (when it entered)"):
        table.add_column(column, overflow="fold")
    for item in intervals:
        reason = item.reason or {}
        values = ", ".join(f"{k} = {value(v)}" for k, v in (reason.get("values") or {}).items())
        table.add_row(item.dimension, item.segment, f"{item.entered_at:%Y-%m-%d}",
                      f"{item.exited_at:%Y-%m-%d}" if item.exited_at else "now",
                      Text(values, style="dim"))
    console.print(table)
    if series:
        trend = "  ".join(f"{moment:%m-%d} {value(score)}" for moment, score, _ in series[-12:])
        console.print(Text("health: " + trend))


@app.command()
@friendly
def changes(run_id: Annotated[int, typer.Argument(help="a run id from 'retainer runs'")],
            project: ProjectOption = Path("."),
            limit: Annotated[int, typer.Option(min=0, help="entities listed per change")] = 10
            ) -> None:
    """Who entered and who exited which segment (or tag) at one run."""
    from retainer.project import Project
    with Project(project).store() as store:
        record = store.run(run_id)
        moves = store.transitions(run_id)
    console.print(f"run {run_id} as of {record.as_of:%Y-%m-%d %H:%M} ({record.status}): "
                  f"{len(moves):,} entries and exits")
    grouped: dict[tuple[str, str, str], list[str]] = {}
    for entity, dimension, change, segment in moves:
        grouped.setdefault((dimension, segment, change), []).append(entity)
    table = Table(show_edge=False)
    for column in ("dimension", "segment", "change", "count", "entities"):
        table.add_column(column, justify="right" if column == "count" else "left")
    for (dimension, segment, change), entities in sorted(grouped.items()):
        shown = ", ".join(entities[:limit]) + (" …" if len(entities) > limit else "")
        table.add_row(dimension, segment, Text(change, style="green" if change == "entered"
                                               else "red"), f"{len(entities):,}", shown)
    console.print(table)


@app.command()
@friendly
def flows(start: Annotated[str, typer.Option("--from", help="first date")],
          end: Annotated[str, typer.Option("--to", help="second date")],
          project: ProjectOption = Path("."),
          dimension: Annotated[str | None, typer.Option(help="one dimension (default all)")
                               ] = None) -> None:
    """How many accounts moved from each segment to each other between two dates."""
    from retainer.project import Project
    loaded = Project(project)
    names = [dimension] if dimension else [
        n for n, d in loaded.rulebook.dimensions.items() if d.entity == "account"]
    with loaded.store() as store:
        for name in names:
            counts = store.flows(_moment(start, "--from"), _moment(end, "--to"), name)
            table = Table(title=f"{name}: {start} → {end}", title_justify="left",
                          show_edge=False)
            counts = [(a or "(absent)", b or "(absent)", n) for a, b, n in counts]
            targets = sorted({str(b) for _, b, _ in counts})
            table.add_column("from \\ to")
            for target in targets:
                table.add_column(target, justify="right")
            for origin in sorted({str(a) for a, _, _ in counts}):
                cells = {str(b): n for a, b, n in counts if str(a) == origin}
                table.add_row(origin, *(Text(f"{cells.get(t, 0):,}", style="bold" if
                                             t != origin and cells.get(t) else "dim")
                                        for t in targets))
            console.print(table)


@app.command()
@friendly
def backfill(start: Annotated[str, typer.Option("--from", help="first as_of")],
             end: Annotated[str, typer.Option("--to", help="last as_of")],
             project: ProjectOption = Path("."),
             every: Annotated[str, typer.Option(help="step between dates, e.g. 7d")] = "7d",
             replace: Annotated[bool, typer.Option(
                 help="rebuild history from --from even if later runs exist")] = False
             ) -> None:
    """Fill history for past dates (sources are read once for all of them)."""
    from retainer.project import Project
    from retainer.rulebook.windows import parse_duration
    try:
        step = parse_duration(every)
    except ValueError as exc:
        from retainer.errors import RetainerError
        raise RetainerError(str(exc)) from None
    report = Project(project).backfill(_moment(start, "--from"), _moment(end, "--to"), step,
                                        replace)
    undone = f"; {report.undone} later run(s) replaced" if report.undone else ""
    console.print(f"[green]✓[/] {len(report.dates)} dates from {report.dates[0]:%Y-%m-%d} to "
                  f"{report.dates[-1]:%Y-%m-%d} in {report.seconds:.1f}s{undone}")
