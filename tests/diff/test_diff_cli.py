"""`retainer diff` on the command line: the output formats and the CI gate."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.diff.helpers import clone, commit_all, edit, run_cli, typo_line


@pytest.fixture(scope="module")
def changed(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = clone(repo, tmp_path_factory.mktemp("cli") / "acme")
    edit(root, "rulebook/segments.yml", "active_days_30d >= 12 and", "active_days_30d >= 8 and")
    return root


def test_cli_gate_passes_with_json_on_stdout(changed: Path) -> None:
    done = run_cli(changed, "--as-of", "2026-11-01", "--format", "json",
                   "--fail-if-moved", "1000")
    assert done.returncode == 0, done.stderr
    parsed = json.loads(done.stdout)
    assert parsed["dimensions"][0]["moved"] > 0
    assert "no dimension moves more than 1,000" in done.stderr


def test_cli_gate_fails_with_markdown_and_says_why(changed: Path) -> None:
    done = run_cli(changed, "--as-of", "2026-11-01", "--format", "markdown",
                   "--fail-if-moved", "0", "--samples", "1")
    assert done.returncode == 1
    assert done.stdout.startswith("### Retainer impact: `HEAD` → `working tree`")
    assert done.stdout.count("  - before: ") == 1
    assert "failing (--fail-if-moved 0):" in done.stderr
    assert re.search(r"lifecycle \(changed\) moves \d+ accounts, more than 0", done.stderr)


def test_cli_invalid_old_rulebook_exits_2_naming_the_ref(repo: Path, tmp_path: Path) -> None:
    root = clone(repo, tmp_path / "acme")
    edit(root, "rulebook/segments.yml", "tenure_days <= 30", "tenure_dys <= 30")
    commit_all(root, "a typo")
    edit(root, "rulebook/segments.yml", "tenure_dys <= 30", "tenure_days <= 30")
    done = run_cli(root, "--as-of", "2026-11-01")
    assert done.returncode == 2
    assert "the old rulebook (HEAD) is invalid" in done.stderr
    line = typo_line(root)
    assert f"HEAD:rulebook/segments.yml:{line}:" in done.stderr
    assert "did you mean 'tenure_days'?" in done.stderr
