"""The diff tests' shared projects: the demo committed in git, and a threshold change
checked against two plain runs.

Both are built once for the whole package: building them runs the demo rulebook several
times, and no test changes them (tests that edit a project edit a clone).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from retainer.project import Project
from retainer.scaffold import create_demo_project
from tests.diff.helpers import AS_OF, Threshold, clone, commit_all, diff_working_tree, edit, git


@pytest.fixture(scope="package")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo project, committed on `main` in a fresh git repository."""
    root = tmp_path_factory.mktemp("diff") / "acme"
    create_demo_project(root, accounts=150, seed=5, end=datetime(2026, 12, 1))
    (root / ".gitignore").write_text(".retainer/\n", encoding="utf-8")
    git(root, "init", "-q")
    commit_all(root, "the demo rulebook")
    return root


@pytest.fixture(scope="package")
def threshold(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Threshold]:
    """power_user needs 8 active days instead of 12; champion too; exec sponsorship narrows."""
    base = tmp_path_factory.mktemp("threshold")
    before = clone(repo, base / "before")
    after = clone(repo, base / "after")
    rules = "rulebook/segments.yml"
    edit(after, rules, "active_days_30d >= 12 and", "active_days_30d >= 8 and")
    edit(after, rules, "contact_active_days_30d >= 12\"}", "contact_active_days_30d >= 8\"}")
    edit(after, rules, 'exec_sponsor_engaged: "exec_active_90d"',
         'exec_sponsor_engaged: "exec_active_90d and logins_30d >= 40"')
    impact = diff_working_tree(after)
    runs = duckdb.connect()
    for name, root in (("old", before), ("new", after)):
        Project(root).run(AS_OF)
        runs.execute(f"ATTACH '{root / '.retainer' / 'output.duckdb'}' AS {name} (READ_ONLY)")
    yield Threshold(impact, runs, before)
    runs.close()
