"""Errors meant for people: what is wrong, where (file:line:column) and how to fix it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Location:
    """A place in a project file; line and column are 1-based as editors show them."""

    file: Path
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        text = str(self.file)
        if self.line is not None:
            text += f":{self.line}"
            if self.column is not None:
                text += f":{self.column}"
        return text

    def shifted(self, columns: int) -> Location:
        """The same line, `columns` characters further right (a position inside a string)."""
        if self.column is None:
            return self
        return Location(self.file, self.line, self.column + columns)


@dataclass(frozen=True)
class Problem:
    """One finding of validation. `hint` says how to fix it."""

    message: str
    location: Location | None = None
    hint: str | None = None

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location else ""
        hint = f"\n    hint: {self.hint}" if self.hint else ""
        return f"{where}{self.message}{hint}"


class RetainerError(Exception):
    """Base of every error Retainer reports to a user; the CLI prints it without a traceback."""

    def __init__(self, message: str, *, hint: str | None = None,
                 location: Location | None = None) -> None:
        self.problem = Problem(message, location, hint)
        super().__init__(str(self.problem))


class ValidationError(RetainerError):
    """The rulebook or project has one or more problems; all are reported at once."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = tuple(problems)
        first = self.problems[0] if self.problems else Problem("invalid project")
        super().__init__(first.message, hint=first.hint, location=first.location)

    def __str__(self) -> str:
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} found:"
        return "\n".join([head, *(f"  {p}" for p in self.problems)])


class DataError(RetainerError):
    """Source data cannot be used (missing file, missing column, unreadable format)."""


class EngineError(RetainerError):
    """The engine failed while running compiled SQL."""


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """A 'did you mean …?' hint for a misspelt name, or None when nothing is close."""
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=3, cutoff=0.6)
    if not close:
        return None
    return "did you mean " + " or ".join(f"'{c}'" for c in close) + "?"


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (drivers append pages of context)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
