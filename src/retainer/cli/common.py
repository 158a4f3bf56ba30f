"""What every command shares: consoles, common options, and errors turned into messages."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.padding import Padding
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
