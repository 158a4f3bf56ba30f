"""The impact diff on real git repositories and real DuckDB runs: who moves, and why.

Counts are checked against two plain `Project.run`s of the old and the new rulebook, whose
published results are compared here with a hand-written query.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import duckdb
import pytest
from rich.console import Console
from ruamel.yaml import YAML

from retainer.cli.diff_command import render_impact
from retainer.diff import (
    Impact,
    InvalidRulebook,
    compare,
    files_at_git_ref,
    gate,
    impact_dict,
    impact_json,
    impact_markdown,
    rulebook_at_git_ref,
    rulebook_from_files,
    rulebook_of_run,
    stored_history,
    working_tree_rulebook,
)
from retainer.errors import RetainerError, ValidationError
from retainer.project import Project
from retainer.scaffold import create_demo_project

AS_OF = datetime(2026, 11, 1)
ROOT = Path(__file__).parent.parent
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


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo project, committed on `main` in a fresh git repository."""
    root = tmp_path_factory.mktemp("diff") / "acme"
    create_demo_project(root, accounts=150, seed=5, end=datetime(2026, 12, 1))
    (root / ".gitignore").write_text(".retainer/\n", encoding="utf-8")
    git(root, "init", "-q")
    commit_all(root, "the demo rulebook")
    return root


def clone(repo: Path, target: Path) -> Path:
    shutil.copytree(repo, target, ignore=shutil.ignore_patterns(".retainer"))
    return target


def diff_working_tree(root: Path, ref: str = "HEAD", samples: int = 3) -> Impact:
    return compare(rulebook_at_git_ref(root, ref), working_tree_rulebook(root), AS_OF, samples,
                   old_label=ref, new_label="working tree")


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


# --- a threshold change, checked against two plain runs --------------------------------------

class Threshold(NamedTuple):
    impact: Impact
    runs: duckdb.DuckDBPyConnection   # the two plain runs' outputs, attached as old and new
    before: Path                      # the unchanged project, with the history of its run


@pytest.fixture(scope="module")
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


def test_a_threshold_change_moves_exactly_the_accounts_two_runs_disagree_on(
        threshold: Threshold) -> None:
    impact, runs, _ = threshold
    expected = Counter({(f, t): n for f, t, n in runs.execute(
        "SELECT o.lifecycle, n.lifecycle, count(*) FROM old.account_results o "
        "JOIN new.account_results n USING (account_id) GROUP BY ALL").fetchall()})
    lifecycle = dimension(impact, "lifecycle")
    assert Counter({(c.from_segment, c.to_segment): c.count for c in lifecycle.cells}) == expected
    moved = sum(n for (f, t), n in expected.items() if f != t)
    assert moved > 0 and lifecycle.moved == moved and lifecycle.status == "changed"
    assert {c.to_segment for c in lifecycle.cells if c.moved} == {"power_user"}
    assert lifecycle.rules_changed and not lifecycle.segments_added
    assert impact.totals[0].level == "account" and impact.totals[0].entities == 150
    assert impact.totals[0].moved == moved
    for other in ("nps_group", "value_tier", "support_pattern", "persona"):
        assert dimension(impact, other).status == "unchanged"
        assert dimension(impact, other).moved == 0
    assert impact.summary.startswith(f"This change moves {moved} of 150 accounts: ")
    assert "from activated to power_user (lifecycle)" in impact.summary


def test_tags_gained_and_lost_match_two_runs(
        threshold: Threshold) -> None:
    impact, runs, _ = threshold
    for name, level, key in (("champion", "contact", "contact_id"),
                             ("exec_sponsor_engaged", "account", "account_id")):
        old, new, gained, lost = runs.execute(
            f"SELECT count_if(o.{name}), count_if(n.{name}), count_if(n.{name} AND NOT o.{name}),"
            f" count_if(o.{name} AND NOT n.{name}) FROM old.{level}_results o "
            f"JOIN new.{level}_results n USING ({key})").fetchone() or ()
        found = tag(impact, name)
        assert (found.level, found.status) == (level, "changed")
        assert (found.old_count, found.new_count, found.gained, found.lost) == (
            old, new, gained, lost)
    assert tag(impact, "champion").gained > 0 and tag(impact, "champion").lost == 0
    assert tag(impact, "exec_sponsor_engaged").lost > 0
    assert tag(impact, "exec_sponsor_engaged").gained == 0
    assert tag(impact, "expansion_signal").status == "unchanged"
    assert "contacts gain it" in impact.summary


def test_samples_are_the_smallest_ids_with_both_versions_reasons(
        threshold: Threshold) -> None:
    impact, runs, _ = threshold
    lifecycle = dimension(impact, "lifecycle")
    for cell in (c for c in lifecycle.cells if c.moved):
        ids = [s.entity_id for s in lifecycle.samples
               if (s.from_segment, s.to_segment) == (cell.from_segment, cell.to_segment)]
        smallest = [str(r[0]) for r in runs.execute(
            "SELECT o.account_id FROM old.account_results o JOIN new.account_results n "
            "USING (account_id) WHERE o.lifecycle = ? AND n.lifecycle = ? "
            "ORDER BY CAST(o.account_id AS VARCHAR) LIMIT 3",
            [cell.from_segment, cell.to_segment]).fetchall()]
        assert ids == smallest
    sample = lifecycle.samples[0]
    assert (sample.old.segment, sample.new.segment) == (sample.from_segment, "power_user")
    assert sample.old.matched is not None and sample.old.matched.segment == sample.from_segment
    rejected = sample.old.passed_over  # why the old rules did not make it a power user
    assert rejected is not None and rejected.segment == "power_user" and not rejected.matched
    days = next(c for c in rejected.clauses if c.text == "active_days_30d >= 12")
    assert days.value is False and 8 <= dict(days.values)["active_days_30d"] < 12
    assert sample.new.matched is not None and sample.new.matched.matched
    assert sample.new.matched.when == "active_days_30d >= 8 and features_90d >= 5"
    assert all(c.value is True for c in sample.new.matched.clauses)
    assert sample.new.passed_over is None  # the old segment's rule comes after power_user


def test_json_output_has_the_documented_keys(
        threshold: Threshold) -> None:
    impact = threshold.impact
    parsed = json.loads(impact_json(impact))
    assert parsed == json.loads(json.dumps(impact_dict(impact)))
    documented = json.loads(re.findall(r"```json\n(.*?)```", (ROOT / "docs" / "diff.md")
                                       .read_text(encoding="utf-8"), re.DOTALL)[0])

    def same_keys(actual: Any, example: Any, where: str) -> None:
        if isinstance(example, dict):
            assert isinstance(actual, dict) and set(actual) == set(example), where
            for key, value in example.items():
                if key != "values" and value is not None and actual[key] is not None:
                    same_keys(actual[key], value, f"{where}.{key}")
        elif isinstance(example, list) and example:
            assert isinstance(actual, list), where
            for item in actual:
                same_keys(item, example[0], f"{where}[]")

    same_keys(parsed, documented, "$")
    assert parsed["schema"] == "retainer.diff/1"
    assert parsed["as_of"] == "2026-11-01T00:00:00"
    assert parsed["old"]["label"] == "HEAD" and parsed["new"]["label"] == "working tree"
    lifecycle = parsed["dimensions"][0]
    assert lifecycle["name"] == "lifecycle" and lifecycle["moved"] > 0
    assert sum(c["count"] for c in lifecycle["matrix"]) == 150
    values = lifecycle["samples"][0]["old"]["passed_over"]["clauses"][0]["values"]
    assert isinstance(values["active_days_30d"], int)
    assert parsed["entities"]["contact"]["total"] > 0


def test_markdown_is_a_pull_request_comment(
        threshold: Threshold) -> None:
    impact = threshold.impact
    text = impact_markdown(impact)
    assert text.startswith("### Retainer impact: `HEAD` → `working tree`\n")
    assert f"**{impact.summary}**" in text
    moved = dimension(impact, "lifecycle").moved
    assert f"#### `lifecycle` (accounts, changed): {moved} accounts moved" in text
    assert "| before ＼ after | `lapsed` |" in text and "| moved in |" in text
    assert re.search(r"\| `activated` \|[^\n]*\*\*\d+\*\*", text)  # moved cells in bold
    assert "No moves in `nps_group`, `value_tier`, `support_pattern`, `persona`." in text
    assert "| `champion` | contact | changed |" in text
    details = text[text.index("<details>"):text.index("</details>")]
    assert "<summary>Sample reasons" in details
    assert "✗ `active_days_30d >= 12` (active_days_30d = " in details
    assert "`power_user` matched (all of): ✓ `active_days_30d >= 8`" in details


# --- renames, added and removed dimensions, health ------------------------------------------

@pytest.fixture(scope="module")
def reshaped(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Impact:
    """power_user renamed; support_pattern removed; a new dimension `engagement`."""
    root = clone(repo, tmp_path_factory.mktemp("reshaped") / "acme")
    rules = root / "rulebook" / "segments.yml"
    edit(root, "rulebook/segments.yml", "- power_user: ", "- champion_user: ")
    yaml = YAML(typ="rt")
    document = yaml.load(rules.read_text(encoding="utf-8"))
    del document["segments"]["support_pattern"]
    with rules.open("w", encoding="utf-8") as out:
        yaml.dump(document, out)
    (root / "rulebook" / "engagement.yml").write_text(textwrap.dedent("""\
        segments:
          engagement:
            - daily:  "active_days_30d >= 15"
            - weekly: "active_days_30d >= 4"
            - rare:   else
        """), encoding="utf-8")
    return diff_working_tree(root)


def test_a_renamed_segment_shows_as_moved(reshaped: Impact) -> None:
    lifecycle = dimension(reshaped, "lifecycle")
    assert lifecycle.segments_added == ("champion_user",)
    assert lifecycle.segments_removed == ("power_user",)
    moved = [c for c in lifecycle.cells if c.moved]
    assert [(c.from_segment, c.to_segment) for c in moved] == [("power_user", "champion_user")]
    assert moved[0].count > 0 and lifecycle.moved == moved[0].count
    assert "segments added: `champion_user`" in impact_markdown(reshaped)


def test_added_and_removed_dimensions_are_reported(reshaped: Impact) -> None:
    added, removed = dimension(reshaped, "engagement"), dimension(reshaped, "support_pattern")
    assert (added.status, added.old_segments) == ("added", ())
    assert (removed.status, removed.new_segments) == ("removed", ())
    assert {c.from_segment for c in added.cells} == {None} and added.moved == 150
    assert {c.to_segment for c in removed.cells} == {None} and removed.moved == 150
    assert sum(c.count for c in added.cells if c.to_segment == "daily") > 0
    assert "adds dimension engagement" in reshaped.summary
    assert "removes dimension support_pattern" in reshaped.summary
    assert reshaped.totals[0].moved == dimension(reshaped, "lifecycle").moved  # shared only
    assert gate(reshaped, 149) == [
        "engagement (added) moves 150 accounts, more than 149",
        "support_pattern (removed) moves 150 accounts, more than 149"]
    parsed = json.loads(impact_json(reshaped))
    engagement = next(d for d in parsed["dimensions"] if d["name"] == "engagement")
    assert engagement["segments"]["new"] == ["daily", "weekly", "rare"]
    assert all(c["from"] is None for c in engagement["matrix"])


def test_a_health_weight_change_moves_bands_and_only_at_risk(
        repo: Path, tmp_path: Path) -> None:
    root = clone(repo, tmp_path / "acme")
    edit(root, "rulebook/health.yml", "{trait: active_days_30d, weight: 40,",
         "{trait: active_days_30d, weight: 5,")
    impact = diff_working_tree(root, samples=0)
    health = impact.health
    assert health is not None and health.status == "changed" and health.definition_changed
    assert sum(c.count for c in health.cells) == 150
    assert health.band_moved > 0 and health.score_changed >= health.band_moved
    assert health.mean_abs_change is not None and health.max_abs_change is not None
    assert 0 < health.mean_abs_change <= health.max_abs_change
    assert health.bands == ("red", "yellow", "green")
    lifecycle = dimension(impact, "lifecycle")
    assert all("at_risk" in (c.from_segment, c.to_segment) for c in lifecycle.cells if c.moved)
    assert all(not d.samples for d in impact.dimensions)
    assert f"{health.band_moved} accounts change health band" in impact.summary
    assert "#### Health (changed)" in impact_markdown(impact)


def test_state_machines_start_both_versions_from_the_same_history(
        threshold: Threshold, tmp_path: Path) -> None:
    """at_risk lasts at least 14 days: a narrower at_risk rule frees no one a day later."""
    root = tmp_path / "acme"  # its run at AS_OF is the history: every stage entered then
    shutil.copytree(threshold.before, root)
    edit(root, "rulebook/segments.yml", "\"health_band = 'red' or days_since_seen > 30\"",
         "\"health_band = 'red'\"")
    old, new = rulebook_at_git_ref(root, "HEAD"), working_tree_rulebook(root)
    next_day = datetime(2026, 11, 2)
    free = dimension(compare(old, new, next_day, 0), "lifecycle")
    assert sum(c.count for c in free.cells if c.moved and c.from_segment == "at_risk") > 0
    with stored_history(new) as history:
        assert history is not None
        impact = compare(old, new, next_day, 3, history=history)
    held = dimension(impact, "lifecycle")
    assert not [c for c in held.cells if c.moved and c.from_segment == "at_risk"]
    at_risk = sum(c.count for c in held.cells if c.from_segment == "at_risk")
    assert at_risk == sum(c.count for c in free.cells if c.from_segment == "at_risk")
    for sample in held.samples:  # any move left is explained, holds included
        for side in (sample.old, sample.new):
            assert side.held is None or side.held.reason in ("min_days", "transition")


# --- the command line: formats and the CI gate -----------------------------------------------

def run_cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([RETAINER, "diff", "-p", str(root), *args],
                          capture_output=True, text=True, timeout=120,
                          env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                               "COLUMNS": "120", "HOME": str(root.parent)})
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    return done


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


def test_the_terminal_table_shows_matrices_tags_and_reasons(threshold: Threshold) -> None:
    console = Console(record=True, width=120)
    render_impact(console, threshold.impact)
    out = console.export_text()
    assert "Impact of the working tree against HEAD, as of 2026-11-01 00:00 UTC" in out
    assert "This change moves" in out and "lifecycle (accounts, changed):" in out
    assert "before ＼ after" in out and "moved in" in out
    assert "✗ active_days_30d >= 12" in out and "→ power_user: matched" in out
    assert "champion" in out and "+" in out  # the tags table
    assert "no moves in nps_group, value_tier, support_pattern, persona" in out


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


# --- against a recorded run ------------------------------------------------------------------

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


# --- errors -----------------------------------------------------------------------------------

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
