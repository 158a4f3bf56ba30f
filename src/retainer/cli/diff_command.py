"""`retainer diff`: who moves if this rulebook change ships — the impact diff.

`retainer.cli.main` registers `diff` with `app.command(name="diff")(diff)`. This module imports
`main` (for `friendly` and the consoles) only when the command runs, so main.py may import it
at any point without an import cycle; heavy modules (duckdb, the compiler) load late too.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from retainer.diff import Cell, Impact, RuleReason, SideReason


class Format(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"


def diff(
        project: Annotated[Path, typer.Option("--project", "-p", help="project directory",
                                              file_okay=False)] = Path("."),
        against: Annotated[str | None, typer.Option(
            "--against", metavar="GIT_REF",
            help="the old rulebook: a commit, branch or tag (default: HEAD)")] = None,
        against_run: Annotated[int | None, typer.Option(
            "--against-run", metavar="RUN_ID",
            help="the old rulebook: the files recorded run RUN_ID used ('retainer runs' "
                 "lists them), evaluated on today's data; instead of --against")] = None,
        as_of: Annotated[str | None, typer.Option(
            "--as-of", help="evaluate both versions as of this UTC date or time (a date "
                            "means its midnight); default: now. With --against-run, give the "
                            "run's as_of to evaluate at the run's moment")] = None,
        output_format: Annotated[Format, typer.Option(
            "--format", help="table (terminal), json (machine-readable, to stdout) or "
                             "markdown (a pull-request comment)")] = Format.table,
        samples: Annotated[int, typer.Option(
            "--samples", min=0, metavar="N",
            help="sample entities, with both versions' reasons, per moved from → to "
                 "cell")] = 3,
        fail_if_moved: Annotated[int | None, typer.Option(
            "--fail-if-moved", min=0, metavar="N",
            help="exit 1 when more than N entities change segment in any dimension "
                 "(a CI gate)")] = None,
) -> None:
    """Show who moves between an old rulebook (committed at a git ref, or used by a recorded
    run) and the working tree, on today's data."""
    from retainer.cli.common import friendly
    friendly(_diff)(project, against, against_run, as_of, output_format, samples,
                    fail_if_moved)


def _diff(project: Path, against: str | None, against_run: int | None, as_of: str | None,
          output_format: Format, samples: int, fail_if_moved: int | None) -> None:
    from retainer import diff as impact_diff
    from retainer.cli.common import console, errors
    from retainer.errors import RetainerError
    from retainer.project import parse_as_of
    if against is not None and against_run is not None:
        # Like Retainer's other argument checks (exit 1): exit 2 means an invalid rulebook.
        raise RetainerError("--against and --against-run both choose the old rulebook",
                            hint="give one: --against GIT_REF for a commit, --against-run "
                                 "RUN_ID for a recorded run")
    moment = parse_as_of(as_of)
    try:
        new = impact_diff.working_tree_rulebook(project)
        if against_run is None:
            label = against or "HEAD"
            old = impact_diff.rulebook_at_git_ref(project, label)
        else:
            label = impact_diff.run_label(against_run)
            old = impact_diff.rulebook_of_run(new, against_run)
        with (errors.status(f"running the old rulebook ({escape(label)}) and the working "
                            "tree"),
              impact_diff.stored_history(new) as history):
            impact = impact_diff.compare(old, new, moment, samples, old_label=label,
                                         new_label=impact_diff.WORKING_TREE, history=history)
    except impact_diff.InvalidRulebook as exc:
        errors.print(f"[bold red]the {exc.side} rulebook ({escape(exc.label)}) is invalid[/]",
                     highlight=False)
        raise
    if output_format is Format.json:
        sys.stdout.write(impact_diff.impact_json(impact))
    elif output_format is Format.markdown:
        sys.stdout.write(impact_diff.impact_markdown(impact))
    else:
        render_impact(console, impact)
    if fail_if_moved is not None:
        reasons = impact_diff.gate(impact, fail_if_moved)
        if reasons:
            errors.print(f"[bold red]failing (--fail-if-moved {fail_if_moved}):[/]",
                         highlight=False)
            for reason in reasons:
                errors.print(f"  {escape(reason)}", highlight=False)
            raise typer.Exit(1)
        errors.print(f"[green]✓[/] no dimension moves more than {fail_if_moved:,} entities",
                     highlight=False)


# --- the terminal rendering --------------------------------------------------------------------

def render_impact(console: Console, impact: Impact) -> None:
    console.print(f"[bold]Impact of the working tree against {escape(impact.old_label)}[/], "
                  f"as of {impact.as_of:%Y-%m-%d %H:%M} UTC "
                  f"[dim](rulebook {impact.old_hash} → {impact.new_hash})[/]", highlight=False)
    console.print(Text(impact.summary, style="bold"))
    quiet: list[str] = []
    for dimension in impact.dimensions:
        if dimension.status == "unchanged":
            quiet.append(dimension.name)
            continue
        title = (f"{dimension.name} ({dimension.level}s, {dimension.status}): "
                 f"{dimension.moved:,} moved")
        console.print(_matrix(dimension.cells, dimension.order, title))
        for what, names in dimension.segment_changes:
            console.print(Text(f"  {what}: {', '.join(names)}", style="dim"))
    if quiet:
        console.print(Text(f"no moves in {', '.join(quiet)}", style="dim"))
    tags = [t for t in impact.tags if t.status != "unchanged"]
    if tags:
        table = Table(title="tags", title_justify="left", show_edge=False)
        for column in ("tag", "level", "status", "before", "after", "gained", "lost"):
            table.add_column(column, justify="left" if column in ("tag", "level", "status")
                             else "right")
        for tag in tags:
            table.add_row(tag.name, tag.level, tag.status, f"{tag.old_count:,}",
                          f"{tag.new_count:,}", Text(f"+{tag.gained:,}", style="green"),
                          Text(f"−{tag.lost:,}", style="red"))
        console.print(table)
    health = impact.health
    if health is not None and health.status != "unchanged":
        console.print(_matrix(health.cells, health.bands,
                              f"health bands ({health.status}): {health.band_moved:,} moved"))
        console.print(Text(
            f"  {health.score_changed:,} scores changed; mean |Δ| "
            f"{_value(health.mean_abs_change)}, max |Δ| {_value(health.max_abs_change)}",
            style="dim"))
    for dimension in impact.dimensions:
        for sample in dimension.samples:
            console.print(Text.assemble(
                (f"{dimension.level} {sample.entity_id}", "bold"),
                f" — {dimension.name}: ", (_value(sample.from_segment), "cyan"), " → ",
                (_value(sample.to_segment), "bold cyan")))
            _side(console, "before", sample.old)
            _side(console, "after", sample.new)


def _matrix(cells: Sequence[Cell], order: Sequence[str], title: str) -> Table:
    from retainer.diff import Matrix, count_or_blank
    matrix = Matrix.of(cells, order)
    table = Table(title=title, title_justify="left", show_edge=False, show_footer=True)
    table.add_column("before ＼ after", footer="moved in")
    for column in matrix.columns:
        table.add_column(_value(column), justify="right",
                         footer=count_or_blank(matrix.moved_in(column)))
    table.add_column("moved out", justify="right",
                     footer=Text(f"{matrix.moved:,}", style="bold"))
    for row in matrix.rows:
        values: list[Text] = []
        for column in matrix.columns:
            cell = matrix.cell(row, column)
            values.append(Text("") if cell is None else Text(
                f"{cell.count:,}", style="bold yellow" if cell.moved else "dim"))
        table.add_row(_value(row), *values, count_or_blank(matrix.moved_out(row)))
    return table


def _side(console: Console, label: str, side: SideReason) -> None:
    console.print(Text.assemble(f"  {label} → ", (_value(side.segment), "cyan")))
    if side.held is not None:
        console.print(Text(f"      held by the state machine: {side.held.rule}; the rules "
                           f"gave {_value(side.held.candidate)}", style="yellow"))
    for rule in (side.passed_over, side.matched):
        if rule is not None:
            _rule(console, rule)


def _rule(console: Console, rule: RuleReason) -> None:
    verdict = "matched" if rule.matched else "did not match"
    head = f"      {'→' if rule.matched else '✗'} {rule.segment}: {verdict}"
    style = "green" if rule.matched else "dim"
    if rule.when is None:
        console.print(Text(f"{head} (else: no earlier rule matched)", style=style))
        return
    if len(rule.clauses) > 1:
        head += f" ({rule.mode} of)"
    console.print(Text(head, style=style))
    for clause in rule.clauses:
        mark, mark_style = {True: ("✓", "green"), False: ("✗", "red"),
                            None: ("?", "yellow")}[clause.value]
        text = Text(f"          {mark} ", style=mark_style)
        text.append(clause.text)
        uses = ", ".join(f"{name} = {_value(v)}" for name, v in clause.values)
        if uses:
            text.append(f"   ({uses})", style="dim")
        console.print(text)


def _value(item: object) -> str:
    from retainer.diff import format_value
    return format_value(item)
