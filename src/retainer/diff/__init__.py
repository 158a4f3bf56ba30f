"""Impact diff: run two versions of a rulebook on the same data and show who moves.

The old version comes from a git ref (`git.py`) or from the files stored with a recorded run
(`runs.py`), the new one from the working tree (`rulebooks.py`). Each runs in its own
in-memory DuckDB engine at the same `as_of`, and the published results meet in a third
connection where every count is one set-based query (`results.py`), so 100k accounts cost a
few joins. `compare.py` turns the counts into an `Impact` (`impact.py`), which `report.py`
writes as JSON or Markdown.
"""

from __future__ import annotations

from retainer.diff.compare import compare
from retainer.diff.git import files_at_git_ref
from retainer.diff.impact import (
    Cell,
    ClauseValue,
    DimensionImpact,
    HealthImpact,
    Held,
    Impact,
    LevelTotal,
    RuleReason,
    Sample,
    SideReason,
    TagImpact,
    gate,
    summary_line,
)
from retainer.diff.report import (
    Matrix,
    count_or_blank,
    format_value,
    impact_dict,
    impact_json,
    impact_markdown,
    matrix_axes,
)
from retainer.diff.results import History
from retainer.diff.rulebooks import (
    WORKING_TREE,
    InvalidRulebook,
    rulebook_at_git_ref,
    rulebook_from_files,
    working_tree_rulebook,
)
from retainer.diff.runs import rulebook_of_run, run_label, stored_history

__all__ = [
    "WORKING_TREE", "Cell", "ClauseValue", "DimensionImpact", "HealthImpact", "Held",
    "History", "Impact", "InvalidRulebook", "LevelTotal", "Matrix", "RuleReason", "Sample",
    "SideReason", "TagImpact", "compare", "count_or_blank", "files_at_git_ref",
    "format_value", "gate", "impact_dict", "impact_json", "impact_markdown", "matrix_axes",
    "rulebook_at_git_ref", "rulebook_from_files", "rulebook_of_run", "run_label",
    "stored_history", "summary_line", "working_tree_rulebook",
]
