"""Git repositories holding a Retainer project, the edits the diff tests make to them,
and small readers of an `Impact`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import duckdb

from retainer.diff import Impact, compare, rulebook_at_git_ref, working_tree_rulebook

AS_OF = datetime(2026, 11, 1)
ROOT = Path(__file__).parents[2]  # the repository, for docs/diff.md
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main",
       "-c", "commit.gpgsign=false"]
RETAINER = str(Path(sys.executable).parent / "retainer")


def git(root: Path, *args: str) -> str:
    return subprocess.run([*GIT, *args], cwd=root, check=True, capture_output=True,
                          text=True).stdout


def commit_all(root: Path, message: str = "rulebook") -> None:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)


def edit(root: Path, relative: str, old: str, new: str) -> None:
    path = root / relative
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {relative}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def clone(repo: Path, target: Path) -> Path:
    shutil.copytree(repo, target, ignore=shutil.ignore_patterns(".retainer"))
    return target


def diff_working_tree(root: Path, ref: str = "HEAD", samples: int = 3) -> Impact:
    return compare(rulebook_at_git_ref(root, ref), working_tree_rulebook(root), AS_OF, samples,
                   old_label=ref, new_label="working tree")


class Threshold(NamedTuple):
    impact: Impact
    runs: duckdb.DuckDBPyConnection   # the two plain runs' outputs, attached as old and new
    before: Path                      # the unchanged project, with the history of its run


def line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                if text in line)


def typo_line(root: Path) -> int:
    """The line of the lifecycle rule `new`, where the tests plant a misspelt name."""
    return line_of(root / "rulebook" / "segments.yml", "- new: ")


def dimension(impact: Impact, name: str) -> Any:
    return next(d for d in impact.dimensions if d.name == name)


def tag(impact: Impact, name: str) -> Any:
    return next(t for t in impact.tags if t.name == name)


def run_cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([RETAINER, "diff", "-p", str(root), *args],
                          capture_output=True, text=True, timeout=120,
                          env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                               "COLUMNS": "120", "HOME": str(root.parent)})
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    return done
