"""Durations (`30d`, `12w`, `6h`) and trait windows.

A window is half-open and ends at or before `as_of`:
  `30d`        → (as_of − 30 days, as_of]
  `[60d, 30d]` → (as_of − 60 days, as_of − 30 days]   (a prior period)
  `all`        → everything up to and including as_of
A row exactly at the lower bound belongs to the earlier window; a row exactly at as_of counts.
Nothing after as_of is ever counted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

_DURATION = re.compile(r"^\s*([0-9]+)\s*([hdw])\s*$")
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
MAX_DURATION = timedelta(days=36525)


def parse_duration(text: Any) -> timedelta:
    """`30d` → 30 days. Raises ValueError with a message a user can act on."""
    if isinstance(text, bool) or not isinstance(text, (str, int)):
        raise ValueError(f"expected a duration like 30d, 12w or 6h, got {text!r}")
    match = _DURATION.match(str(text))
    if match is None:
        raise ValueError(f"'{text}' is not a duration; write a number and a unit: "
                         "h (hours), d (days) or w (weeks), e.g. 30d")
    amount = int(match.group(1))
    unit = _UNITS[match.group(2)]
    # Windows reach back from as_of; past a century they would leave the calendar.
    if amount * unit.total_seconds() > MAX_DURATION.total_seconds():
        raise ValueError(f"'{text}' is longer than 100 years; leave the window out to count "
                         "everything up to as_of")
    return amount * unit


def format_duration(value: timedelta) -> str:
    """The shortest unit spelling of a duration (`timedelta(days=14)` → `2w`)."""
    hours = int(value.total_seconds() // 3600)
    if hours % (24 * 7) == 0 and hours:
        return f"{hours // (24 * 7)}w"
    if hours % 24 == 0:
        return f"{hours // 24}d"
    return f"{hours}h"


@dataclass(frozen=True)
class Window:
    """Rows with time in (as_of − start, as_of − end]; start None means unbounded."""

    start: timedelta | None = None
    end: timedelta = timedelta(0)

    @classmethod
    def parse(cls, value: Any) -> Window:
        if value is None or value == "all":
            return cls()
        if isinstance(value, (list, tuple)):
            if len(value) != 2:
                raise ValueError("a prior window is [older, newer], e.g. [60d, 30d]")
            start, end = parse_duration(value[0]), parse_duration(value[1])
            if start <= end:
                raise ValueError(f"window [{value[0]}, {value[1]}] is empty: the first "
                                 "duration must be the older bound, e.g. [60d, 30d]")
            return cls(start, end)
        length = parse_duration(value)
        if not length:
            raise ValueError(f"window '{value}' is empty; give a positive duration, or leave "
                             "the window out to count everything up to as_of")
        return cls(length)

    @property
    def unbounded(self) -> bool:
        return self.start is None and self.end == timedelta(0)

    def __str__(self) -> str:
        if self.start is None:
            return "all time" if not self.end else f"all time until {format_duration(self.end)} ago"
        if not self.end:
            return f"last {format_duration(self.start)}"
        return f"from {format_duration(self.start)} to {format_duration(self.end)} ago"
