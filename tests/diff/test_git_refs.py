"""Reading the old rulebook from git, and the errors a user can meet doing so: an invalid
rulebook at a ref, no repository, an unknown ref, a project that did not exist yet."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from retainer.diff import (
    InvalidRulebook,
    files_at_git_ref,
    rulebook_at_git_ref,
    working_tree_rulebook,
)
from retainer.errors import RetainerError, ValidationError
from retainer.project import Project
from tests.diff.helpers import (
    AS_OF,
    clone,
    commit_all,
    diff_working_tree,
    edit,
    git,
    line_of,
    typo_line,
)


def test_an_invalid_old_rulebook_names_ref_file_line_and_column(
        repo: Path, tmp_path: Path) -> None:
    root = clone(repo, tmp_path / "acme")
    edit(root, "rulebook/segments.yml", "tenure_days <= 30", "tenure_dys <= 30")
    with pytest.raises(ValidationError) as in_place:  # what `retainer validate` would say
        Project(root).plan(AS_OF)
    expected = str(in_place.value.problems[0].location).replace(str(root) + "/", "HEAD~1:")
    commit_all(root, "a typo")
    edit(root, "rulebook/segments.yml", "tenure_dys <= 30", "tenure_days <= 30")
    commit_all(root, "fixed")
    with pytest.raises(InvalidRulebook) as raised:
        diff_working_tree(root, "HEAD~1")
    assert (raised.value.side, raised.value.label) == ("old", "HEAD~1")
    problem = raised.value.problems[0]
    assert str(problem.location) == expected and expected.startswith(
        f"HEAD~1:rulebook/segments.yml:{typo_line(root)}:")
    assert "did you mean 'tenure_days'?" in str(problem)

    edit(root, "rulebook/health.yml", "  bands:", "  bandz:")
    commit_all(root, "an unknown key")
    with pytest.raises(InvalidRulebook) as raised:
        rulebook_at_git_ref(root, "HEAD")
    problem = next(p for p in raised.value.problems if "bandz" in p.message)
    line = line_of(root / "rulebook" / "health.yml", "bandz:")
    assert str(problem.location) == f"HEAD:rulebook/health.yml:{line}:3"
    assert "unknown key 'bandz'" in problem.message and "did you mean 'bands'?" in str(problem)

    (root / "rulebook" / "health.yml").write_text("health: [unclosed\n", encoding="utf-8")
    with pytest.raises(InvalidRulebook) as raised:
        working_tree_rulebook(root)
    assert (raised.value.side, raised.value.label) == ("new", "working tree")
    assert "invalid YAML" in raised.value.problems[0].message


def test_not_a_git_repository(repo: Path, tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    root = clone(repo, tmp_path / "plain")
    shutil.rmtree(root / ".git")
    with pytest.raises(RetainerError) as raised:
        files_at_git_ref(root, "HEAD")
    assert "is not in a git repository" in str(raised.value)
    assert "git init" in (raised.value.problem.hint or "")


def test_an_unknown_ref_suggests_a_branch(repo: Path) -> None:
    with pytest.raises(RetainerError) as raised:
        files_at_git_ref(repo, "mian")
    assert "unknown git ref 'mian'" in str(raised.value)
    assert raised.value.problem.hint == "did you mean 'main'?"
    with pytest.raises(RetainerError, match="is not a git ref"):
        files_at_git_ref(repo, "--output=x")


def test_a_project_that_did_not_exist_at_the_ref(tmp_path: Path) -> None:
    top = tmp_path / "monorepo"
    top.mkdir()
    git(top, "init", "-q")
    (top / "README.md").write_text("before the project\n", encoding="utf-8")
    commit_all(top, "readme")
    project = top / "segments" / "acme"
    project.mkdir(parents=True)
    (project / "retainer.yml").write_text(textwrap.dedent("""\
        name: acme
        rulebook: [rules, extra.yml, ../../outside]
        sources:
          accounts: {kind: accounts, from: data/accounts.csv, key: account_id}
        """), encoding="utf-8")
    (project / "rules" / "deep").mkdir(parents=True)
    (project / "rules" / "a.yml").write_text("traits: {}\n", encoding="utf-8")
    (project / "rules" / "deep" / "b.yaml").write_text("tags: {}\n", encoding="utf-8")
    (project / "rules" / "notes.txt").write_text("not a rulebook file\n", encoding="utf-8")
    (project / "extra.yml").write_text("segments: {}\n", encoding="utf-8")
    (project / "unlisted.yml").write_text("tags: {}\n", encoding="utf-8")
    commit_all(top, "project")
    (project / "extra.yml").write_text("segments: {changed: []}\n", encoding="utf-8")
    files = files_at_git_ref(project, "HEAD")
    assert sorted(files) == ["extra.yml", "retainer.yml", "rules/a.yml", "rules/deep/b.yaml"]
    assert files["extra.yml"] == "segments: {}\n"  # as committed, not as edited
    with pytest.raises(RetainerError) as raised:
        files_at_git_ref(project, "HEAD~1")
    assert "the project did not exist at HEAD~1: segments/acme/retainer.yml" in str(raised.value)
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q")
    with pytest.raises(RetainerError, match="no commits yet"):
        files_at_git_ref(empty, "HEAD")
