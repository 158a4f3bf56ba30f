"""`retainer diff --against-run`: the old rulebook is the one a recorded run used."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any, NamedTuple

import duckdb
import pytest

from retainer.diff import rulebook_from_files, rulebook_of_run, working_tree_rulebook
from retainer.errors import RetainerError, ValidationError
from retainer.project import Project
from tests.diff.helpers import AS_OF, clone, edit, run_cli, typo_line


class Recorded(NamedTuple):
    root: Path                         # its working tree holds the second run's rulebook
    first_run: int
    dimensions: tuple[str, ...]        # the account dimensions
    results: tuple[dict[str, tuple[Any, ...]], ...]  # per run: account id → its segments


@pytest.fixture(scope="module")
def recorded(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    """Two runs at AS_OF in one project: the committed rulebook, then power_user at 8 days."""
    root = clone(repo, tmp_path_factory.mktemp("recorded") / "acme")
    dimensions = tuple(name for name, d in Project(root).rulebook.dimensions.items()
                       if d.entity == "account")
    run_ids, results = [], []
    for change in ((), ("active_days_30d >= 12 and", "active_days_30d >= 8 and")):
        if change:
            edit(root, "rulebook/segments.yml", *change)
        project = Project(root)
        run_ids.append(project.run(AS_OF).run_id)
        with duckdb.connect(str(project.output_database), read_only=True) as published:
            rows = published.execute(f"SELECT account_id, {', '.join(dimensions)} "
                                     "FROM account_results").fetchall()
        results.append({str(row[0]): tuple(row[1:]) for row in rows})
    return Recorded(root, run_ids[0], dimensions, tuple(results))


def test_against_a_run_moves_what_the_two_runs_published(recorded: Recorded,
                                                         repo: Path) -> None:
    done = run_cli(recorded.root, "--against-run", str(recorded.first_run),
                   "--as-of", "2026-11-01", "--format", "json")
    assert done.returncode == 0, done.stderr
    parsed = json.loads(done.stdout)
    assert parsed["old"] == {"label": f"run {recorded.first_run}",
                             "rulebook_hash": working_tree_rulebook(repo).content_hash}
    before, after = recorded.results
    assert before.keys() == after.keys()
    for index, name in enumerate(recorded.dimensions):
        expected = Counter((before[key][index], after[key][index]) for key in before)
        found = next(d for d in parsed["dimensions"] if d["name"] == name)
        assert {(c["from"], c["to"]): c["count"] for c in found["matrix"]} == expected, name
    assert parsed["dimensions"][0]["name"] == "lifecycle"
    assert parsed["dimensions"][0]["moved"] > 0


def test_against_an_unknown_run_points_at_the_list_of_runs(recorded: Recorded) -> None:
    done = run_cli(recorded.root, "--against-run", "99")
    assert done.returncode == 1
    assert "no run 99 in the state store" in done.stderr
    assert "'retainer runs' lists them" in done.stderr


def test_against_and_against_run_together_are_refused(repo: Path) -> None:
    done = run_cli(repo, "--against", "HEAD", "--against-run", "1")
    assert done.returncode == 1
    assert "--against and --against-run both choose the old rulebook" in done.stderr
    assert "give one:" in done.stderr


def test_an_invalid_run_rulebook_names_run_file_line_and_column(recorded: Recorded,
                                                                tmp_path: Path) -> None:
    root = tmp_path / "acme"
    shutil.copytree(recorded.root, root)
    edit(root, "rulebook/segments.yml", "tenure_days <= 30", "tenure_dys <= 30")
    with pytest.raises(ValidationError) as in_place:  # recorded as failed, with its files
        Project(root).run(AS_OF)
    edit(root, "rulebook/segments.yml", "tenure_dys <= 30", "tenure_days <= 30")
    with Project(root).store() as store:
        failed = store.runs(1)[0]
    assert failed.status == "failed"
    label = f"run {failed.run_id}"
    expected = str(in_place.value.problems[0].location).replace(str(root) + "/", label + ":")
    assert expected.startswith(f"{label}:rulebook/segments.yml:{typo_line(root)}:")
    done = run_cli(root, "--against-run", str(failed.run_id), "--as-of", "2026-11-01")
    assert done.returncode == 2
    assert f"the old rulebook ({label}) is invalid" in done.stderr
    assert f"{expected}: segment 'new' of 'lifecycle': unknown name 'tenure_dys'" in done.stderr
    assert "did you mean 'tenure_days'?" in done.stderr


def test_runs_without_stored_files_and_projects_without_runs(
        recorded: Recorded, repo: Path, tmp_path: Path) -> None:
    old = rulebook_of_run(working_tree_rulebook(recorded.root), recorded.first_run)
    assert old.root == recorded.root.resolve()
    assert str(old.origin("segments", "lifecycle").location).startswith(
        f"run {recorded.first_run}:rulebook/segments.yml:")

    root = tmp_path / "acme"
    shutil.copytree(recorded.root, root)
    with Project(root).store() as store:  # as a run recorded by an older Retainer reads
        legacy = store.begin_run("run", AS_OF, "0123456789abcdef", "89abcdef0123456789ab",
                                 "duckdb", {}, AS_OF)
    with pytest.raises(RetainerError) as raised:
        rulebook_of_run(working_tree_rulebook(root), legacy)
    assert f"run {legacy} was recorded before Retainer kept each run's rulebook files" in str(
        raised.value)
    assert raised.value.problem.hint == (
        "compare with the commit it ran at: --against 89abcdef0123")

    plain = clone(repo, tmp_path / "plain")
    with pytest.raises(RetainerError) as raised:
        rulebook_of_run(working_tree_rulebook(plain), 1)
    assert "no run 1: the project has no runs recorded yet" in str(raised.value)
    assert "'retainer runs' lists them" in (raised.value.problem.hint or "")
    assert not (plain / ".retainer").exists()  # the diff reads the store, never creates it


def test_rulebook_from_stored_files_reads_todays_data(repo: Path) -> None:
    """What `--against-run` builds on: file texts in, today's data paths."""
    files = {"retainer.yml": (repo / "retainer.yml").read_text(encoding="utf-8"),
             "rulebook/traits.yml": 'traits:\n  logins_30d: {count: events, window: 30d}\n'}
    rulebook = rulebook_from_files(files, repo, label="run 42")
    assert rulebook.root == repo.resolve()
    assert rulebook.path("data/accounts.csv") == repo.resolve() / "data" / "accounts.csv"
    assert str(rulebook.origin("traits", "logins_30d").location) == (
        "run 42:rulebook/traits.yml:2:3")
    broken = {**files, "rulebook/traits.yml": "traits:\n  logins_30d: {count: events, "
                                              "window: 30d, colour: red}\n"}
    with pytest.raises(ValidationError) as raised:
        rulebook_from_files(broken, repo, label="run 42")
    assert str(raised.value.problems[0].location).startswith("run 42:rulebook/traits.yml:2:")
    with pytest.raises(RetainerError, match="leaves the project"):
        rulebook_from_files({**files, "../escape.yml": ""}, repo)
