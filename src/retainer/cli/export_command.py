"""`retainer export dbt DIR`: write the compiled rulebook out as a dbt project.

`retainer.cli.main` mounts `export_app` (a sub-app holding `dbt`) with
`app.add_typer(export_app, name="export")`. Like diff_command, this module imports `main` (for
`friendly` and the consoles) only when the command runs, so main.py may import it at any
point; the compiler and duckdb load late too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

export_app = typer.Typer(no_args_is_help=True,
                         help="Write the compiled rulebook out for other tools.")


def export_dbt(
        directory: Annotated[Path, typer.Argument(
            help="the directory to write the dbt project into (new or empty)",
            file_okay=False)],
        project: Annotated[Path, typer.Option("--project", "-p", help="project directory",
                                              file_okay=False)] = Path("."),
        as_of: Annotated[str | None, typer.Option(
            "--as-of", help="evaluate as of this UTC date or time (a date means its "
                            "midnight); baked into the SQL; default: now")] = None,
        dialect: Annotated[str, typer.Option(
            help="the warehouse the models are written for: duckdb, snowflake, bigquery, "
                 "databricks or postgres")] = "duckdb",
        force: Annotated[bool, typer.Option(
            help="write into a non-empty directory, replacing a previous export's files")
        ] = False,
) -> None:
    """Write a dbt project computing the rulebook's results (one model per compiled step)."""
    from retainer.cli.common import friendly
    friendly(_export_dbt)(directory, project, as_of, dialect, force)


def _export_dbt(directory: Path, project: Path, as_of: str | None, dialect: str,
                force: bool) -> None:
    from rich.markup import escape

    from retainer.cli.common import console
    from retainer.export.dbt import check_dialect, export_dbt_project
    from retainer.project import Project, parse_as_of
    check_dialect(dialect)
    moment = parse_as_of(as_of)
    loaded = Project(project)
    catalog = loaded.catalog()
    plan = loaded.plan(moment, catalog, dialect=dialect)
    written = export_dbt_project(loaded.rulebook, catalog, plan, directory, dialect, force)
    target = directory.expanduser().resolve()
    console.print(f"[green]wrote[/] {escape(str(target))}: {len(written.models)} models over "
                  f"{len(written.sources)} sources, {dialect}, as of "
                  f"{moment:%Y-%m-%d %H:%M} UTC", highlight=False)
    if dialect == "duckdb":
        console.print(f"next: [bold]dbt build --profiles-dir {escape(str(target))} "
                      f"--project-dir {escape(str(target))}[/]", highlight=False)
    else:
        console.print(f"next: see {escape(str(target / 'README.md'))} to map the sources "
                      "and the profile, then [bold]dbt build[/]", highlight=False)


export_app.command(name="dbt")(export_dbt)
