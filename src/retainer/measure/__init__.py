"""Measures inside segments, health backtests and playbook uplift (docs/measures.md).

`measure(project)` computes the rulebook's measures as of a date; `backtest(project, …)`
scores past health against real churn; `stats` holds the interval methods.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from retainer.measure.checks import check_measures
from retainer.measure.metrics import Figure, MeasureResult, compute
from retainer.measure.workspace import Workspace, open_workspace

if TYPE_CHECKING:
    from retainer.project import Project


def measure(project: Project, names: Sequence[str] | None = None,
            as_of: datetime | None = None) -> list[MeasureResult]:
    """The named measures (default: all), as of `as_of` (default: the latest results; for
    outcomes over a horizon, the latest date whose horizon has been observed)."""
    chosen = list(names) if names else list(project.rulebook.measures)
    known = [n for n in chosen if n in project.rulebook.measures]
    check_measures(project.rulebook, known)
    with open_workspace(project) as ws:
        return [compute(ws, name, as_of) for name in chosen]


__all__ = ["Figure", "MeasureResult", "Workspace", "check_measures", "compute", "measure",
           "open_workspace"]
