"""`retainer` — validate, run, explain, compile and test a segmentation rulebook.

Exit codes: 0 success · 1 a rule test failed or the run failed · 2 the project is invalid.
Heavy modules (duckdb, the compiler) are imported inside commands so `--help` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from retainer.cli.common import AsOfOption, ProjectOption, console, errors, friendly

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Customer segmentation for retention: a rulebook in git, run on your "
                       "own data.")


@app.command()
@friendly
def init(directory: Annotated[Path, typer.Argument(help="where to create the project")],
         accounts: Annotated[int, typer.Option(help="number of demo accounts")] = 400,
         seed: Annotated[int, typer.Option(help="random seed of the demo data")] = 7,
         force: Annotated[bool, typer.Option(help="write into a non-empty directory")] = False
         ) -> None:
    """Create a demo project: a B2B SaaS rulebook, its tests and generated data."""
    from retainer.scaffold import create_demo_project
    summary = create_demo_project(directory, accounts=accounts, seed=seed, force=force)
    console.print(f"[green]created[/] {directory}: {summary.accounts:,} accounts, "
                  f"{summary.contacts:,} contacts, {summary.events:,} events "
                  f"(data until {summary.end:%Y-%m-%d})")
    console.print(f"next: [bold]retainer run -p {directory}[/]")


@app.command()
@friendly
def validate(project: ProjectOption = Path(".")) -> None:
    """Check the project and rulebook against the sources, without running anything."""
    from retainer.project import Project
    loaded = Project(project)
    catalog = loaded.catalog()
    plan = loaded.plan(catalog=catalog)
    rulebook = loaded.rulebook
    from retainer.measure import check_measures
    check_measures(rulebook)
    from retainer.checks import check_activation
    check_activation(rulebook, plan, catalog)
    counts = ", ".join(_count(len(items), noun) for items, noun in (
        (rulebook.sources, "source"), (rulebook.traits, "trait"),
        (rulebook.dimensions, "dimension"), (rulebook.tags, "tag")))
    activation = ", ".join(_count(len(items), noun) for items, noun in (
        (rulebook.playbooks, "playbook"), (rulebook.syncs, "sync")))
    console.print(f"[green]✓[/] {rulebook.config.name}: {counts}, health "
                  f"{'on' if rulebook.health else 'off'}, {activation}; "
                  f"{len(plan.steps)} compiled steps")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


@app.command()
@friendly
def run(project: ProjectOption = Path("."), as_of: AsOfOption = None) -> None:
    """Compute traits, health, segments and tags, and publish the results."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from retainer.cli import render
    from retainer.project import Project, parse_as_of
    loaded = Project(project)
    moment = parse_as_of(as_of)
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                  console=errors, transient=True) as progress:
        task = progress.add_task("compiling", total=None)

        def advance(step: Any, index: int, total: int) -> None:
            progress.update(task, total=total, completed=index,
                            description=f"{step.name}: {step.purpose}")

        report = loaded.run(moment, advance)
    render.run_report(console, report)
    if not report.in_history:
        console.print("[yellow]note:[/] history already holds later runs, so this run was "
                      "published but not added to history (see 'retainer backfill --replace')")


@app.command()
@friendly
def explain(entity_id: Annotated[str, typer.Argument(help="account id (or contact id)")],
            project: ProjectOption = Path("."),
            contact: Annotated[bool, typer.Option(help="explain a contact")] = False) -> None:
    """Why an account is in its segments: rules, clause values, tags and health."""
    from retainer.cli import render
    from retainer.explain import explain as explain_entity
    from retainer.project import Project
    engine = Project(project).results()
    try:
        item = explain_entity(engine, entity_id, "contact" if contact else "account")
    finally:
        engine.close()
    render.explanation(console, item)


@app.command(name="compile")
@friendly
def compile_(project: ProjectOption = Path("."), as_of: AsOfOption = None,
             dialect: Annotated[str, typer.Option(
                 help="duckdb, postgres, spark, snowflake, bigquery or databricks")] = "duckdb",
             output: Annotated[Path | None, typer.Option(help="write to this file")] = None
             ) -> None:
    """Print the SQL the rulebook compiles to, in any dialect."""
    from retainer.project import Project, parse_as_of
    dialects = ("duckdb", "postgres", "spark", "snowflake", "bigquery", "databricks")
    if dialect not in dialects:
        from retainer.errors import RetainerError
        raise RetainerError(f"unknown dialect '{dialect}'", hint="one of " + ", ".join(dialects))
    sql = Project(project).plan(parse_as_of(as_of), dialect=dialect).sql(dialect)
    if output:
        output.write_text(sql, encoding="utf-8")
        console.print(f"wrote {output}")
    else:
        sys.stdout.write(sql)


@app.command()
@friendly
def test(project: ProjectOption = Path(".")) -> None:
    """Run the project's rule tests (tests/*.yml) and show a diff for each failure."""
    from retainer.cli import render
    from retainer.project import Project
    from retainer.testing import run_all
    results = run_all(Project(project))
    if not results:
        console.print("no rule tests found (add tests/*.yml)")
        return
    render.test_results(console, results)
    if any(not r.passed for r in results):
        raise typer.Exit(1)


# Commands defined in their own modules register themselves on import.
from retainer.cli import history as _history  # noqa: E402,F401
from retainer.cli.diff_command import diff as _diff  # noqa: E402

app.command(name="diff")(_diff)
from retainer.cli.export_command import export_app as _export_app  # noqa: E402

app.add_typer(_export_app, name="export")
from retainer.cli.measure_commands import backtest as _backtest  # noqa: E402
from retainer.cli.measure_commands import measure as _measure  # noqa: E402
from retainer.cli.measure_commands import report as _report  # noqa: E402

app.command(name="measure")(_measure)
app.command(name="backtest")(_backtest)
app.command(name="report")(_report)

# act, decisions, sync and forget: each module adds its commands to `app`.
from retainer.cli import act_command as _act  # noqa: E402,F401
from retainer.cli import privacy_commands as _privacy  # noqa: E402,F401
from retainer.cli import sync_command as _sync  # noqa: E402,F401

if __name__ == "__main__":
    app()
