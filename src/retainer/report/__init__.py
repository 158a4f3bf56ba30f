"""`retainer report`: one self-contained HTML file that works offline.

`gather` collects the data (history, results, measures, backtest, quality); `render` draws
it with Plotly, whose JavaScript is embedded in the page, so nothing is fetched when it opens.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from retainer.project import Project


def write_report(project: Project, path: Path, horizon: timedelta = timedelta(days=90),
                 as_of: datetime | None = None) -> Path:
    """Gather, render and write the report to `path` (replaced only when complete)."""
    from retainer.report.data import gather
    from retainer.report.html import render

    page = render(gather(project, horizon, as_of))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(page, encoding="utf-8")
    partial.replace(path)
    return path


__all__ = ["write_report"]
