"""What every command shares: consoles, common options, and errors turned into messages."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console, JustifyMethod
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

console = Console()
errors = Console(stderr=True, soft_wrap=True)  # messages carry paths: never wrap them
F = TypeVar("F", bound=Callable[..., Any])

ProjectOption = Annotated[Path, typer.Option("--project", "-p", help="project directory",
                                             file_okay=False)]
AsOfOption = Annotated[str | None, typer.Option(
    "--as-of", help="evaluate as of this UTC date or time (a date means its midnight); "
                    "default: now")]
# How a finished run, act or sync reads at a glance.
STATUS_STYLE = {"succeeded": "green", "failed": "red", "interrupted": "yellow"}


def indented(text: Text, indent: int) -> None:
    """Print `text` indented, its wrapped lines too (narrow terminals)."""
    console.print(Padding(text, (0, 0, 0, indent), expand=False), highlight=False)


def fits(table: Table) -> bool:
    """Whether `table` fits the terminal as it is, no cell cut short ('succe…')."""
    unbounded = console.options.update(max_width=10**6)
    return console.measure(table, options=unbounded).maximum <= console.width


def fitted_table(columns: dict[str, JustifyMethod], rows: Sequence[dict[str, Any]],
                 droppable: Sequence[str]) -> Table:
    """`rows` under `columns` (header → justification). Where the terminal is too narrow,
    the `droppable` columns are left out, the first named first, until it fits: a column
    left out reads better than every column cut short."""
    shown = list(columns)
    for drop in [None, *droppable]:
        if drop is not None:
            shown.remove(drop)
        table = Table(show_edge=False, padding=(0, 1))
        for column in shown:
            table.add_column(column, no_wrap=True, justify=columns[column])
        for row in rows:
            table.add_row(*(row[column] for column in shown))
        if fits(table):
            break
    return table


def friendly(command: F) -> F:
    """Turn Retainer's errors into readable messages and exit codes, never tracebacks."""
    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from retainer.errors import RetainerError, ValidationError
        try:
            return command(*args, **kwargs)
        except ValidationError as exc:
            errors.print(f"[bold red]{len(exc.problems)} problem(s) in the project:[/]")
            for problem in exc.problems:
                _problem(problem)
            raise typer.Exit(2) from None
        except RetainerError as exc:
            _problem(exc.problem, "[bold red]error:[/] ")
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            errors.print("interrupted; 'retainer runs' shows what was recorded")
            raise typer.Exit(130) from None
    return wrapper  # type: ignore[return-value]


def _problem(problem: Any, prefix: str = "  ") -> None:
    from rich.markup import escape
    where = f"[cyan]{escape(str(problem.location))}[/]: " if problem.location else ""
    errors.print(f"{prefix}{where}{escape(problem.message)}", highlight=False)
    if problem.hint:
        errors.print(f"      [dim]hint:[/] {escape(problem.hint)}", highlight=False)
