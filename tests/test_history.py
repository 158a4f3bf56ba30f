"""History through the facade: runs over time, state machines, backfills, and the CLI."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from retainer.errors import RetainerError
from retainer.explain import explain
from retainer.project import Project
from tests.conftest import ProjectWriter

RULEBOOK = {"main.yml": """
    traits:
      logins_7d: {count: events, where: "name = 'login'", window: 7d}
      logins_30d: {count: events, where: "name = 'login'", window: 30d}
    segments:
      activity:
        state_machine:
          min_days: {active: 14}
        rules:
          - active: "logins_7d > 0"
          - idle: else
      stage:
        state_machine:
          transitions: {lapsed: [reactivated]}
        rules:
          - reactivated: "logins_7d >= 3"
          - active: "logins_7d >= 1"
          - lapsed: "logins_30d = 0"
          - idle: else
    """}


def events(*days: str) -> str:
    rows = "".join(f"a1,c1,{day} 10:00:00,login,\n" for day in days)
    return "account_id,user_id,ts,name,feature\n" + rows


def at(day: str) -> datetime:
    return datetime.fromisoformat(day)


def stages(project: Project, dimension: str) -> list[tuple[str, str, str | None]]:
    with project.store() as store:
        return [(i.segment, f"{i.entered_at:%m-%d}",
                 None if i.exited_at is None else f"{i.exited_at:%m-%d}")
                for i in store.history("a1") if i.dimension == dimension]


def test_a_state_machine_holds_stages_for_min_days_and_allowed_moves(
        write_project: ProjectWriter) -> None:
    root = write_project(rulebook=RULEBOOK, data={"events.csv": events(
        "2026-10-01", "2026-11-10", "2026-11-15", "2026-11-16", "2026-11-17")})
    project = Project(root)
    for day in ("2026-10-02", "2026-10-10", "2026-10-17", "2026-11-05", "2026-11-11",
                "2026-11-18"):
        project.run(at(day))
    # Active from 10-02; no login in the week before 10-10, but active is held 14 days.
    assert stages(project, "activity") == [
        ("active", "10-02", "10-17"), ("idle", "10-17", "11-11"), ("active", "11-11", None)]
    # Lapsed on 11-05; one login on 11-10 is not enough to leave lapsed (only
    # 'reactivated' may follow it); three logins in a week on 11-18 are.
    assert stages(project, "stage") == [
        ("active", "10-02", "10-10"), ("idle", "10-10", "11-05"),
        ("lapsed", "11-05", "11-18"), ("reactivated", "11-18", None)]


def test_explain_says_why_a_stage_was_held(write_project: ProjectWriter) -> None:
    root = write_project(rulebook=RULEBOOK, data={"events.csv": events("2026-10-01")})
    project = Project(root)
    project.run(at("2026-10-02"))
    project.run(at("2026-10-10"))
    engine = project.results()
    try:
        item = explain(engine, "a1")
    finally:
        engine.close()
    activity = next(d for d in item.dimensions if d.name == "activity")
    assert activity.segment == "active"
    assert activity.held is not None
    assert (activity.held.reason, activity.held.candidate, activity.held.since.day) == (
        "min_days", "idle", 2)


def test_backfill_gives_the_same_history_as_separate_runs(write_project: ProjectWriter,
                                                          tmp_path: Path) -> None:
    days = ["2026-10-01", "2026-11-10", "2026-11-15", "2026-11-16", "2026-11-17"]
    one = Project(write_project(rulebook=RULEBOOK, data={"events.csv": events(*days)},
                                root=tmp_path / "one"))
    two = Project(write_project(rulebook=RULEBOOK, data={"events.csv": events(*days)},
                                root=tmp_path / "two"))
    start, end, step = at("2026-10-02"), at("2026-11-27"), timedelta(days=4)
    moment = start
    while moment <= end:
        one.run(moment)
        moment += step
    report = two.backfill(start, end, step)
    assert len(report.dates) == len(report.run_ids) == 15
    for dimension in ("activity", "stage", "tag:none"):
        assert stages(one, dimension) == stages(two, dimension)
    with one.store() as a, two.store() as b:
        assert a.health_series("a1") == b.health_series("a1")
    # The backfill published its last date as the current results.
    with duckdb.connect(str(two.output_database), read_only=True) as db:
        assert db.sql("SELECT DISTINCT as_of FROM account_results").fetchall() == [(end,)]


def test_backfill_refuses_to_overwrite_history_unless_asked(write_project: ProjectWriter
                                                            ) -> None:
    project = Project(write_project(rulebook=RULEBOOK, data={"events.csv": events(
        "2026-10-01")}))
    project.run(at("2026-11-01"))
    retainer = str(Path(sys.executable).parent / "retainer")
    done = subprocess.run([retainer, "backfill", "--from", "2026-10-01", "--to", "2026-11-05",
                           "--every", "7d", "-p", str(project.root)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "history already holds runs up to 2026-11-01" in done.stderr
    assert "--replace" in done.stderr
    done = subprocess.run([retainer, "backfill", "--from", "2026-10-01", "--to", "2026-11-05",
                           "--every", "7d", "--replace", "-p", str(project.root)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "6 dates" in done.stdout and "1 later run(s) replaced" in done.stdout


def test_a_past_run_is_published_but_not_added_to_history(write_project: ProjectWriter
                                                          ) -> None:
    project = Project(write_project(rulebook=RULEBOOK, data={"events.csv": events(
        "2026-10-01")}))
    assert project.run(at("2026-11-01")).in_history
    report = project.run(at("2026-10-02"))
    assert not report.in_history
    # a2 signed up on 2026-11-20, so on 2026-10-02 only a1 existed.
    assert report.dimensions["activity"] == [("active", 1)]
    assert stages(project, "activity") == [("idle", "11-01", None)]


def test_history_on_a_postgresql_store(write_project: ProjectWriter, postgres_url: str
                                       ) -> None:
    from tests.conftest import BASE_PROJECT
    root = write_project(project=BASE_PROJECT + f"state: {postgres_url}\n", rulebook=RULEBOOK,
                         data={"events.csv": events("2026-10-01")})
    project = Project(root)
    project.run(at("2026-10-02"))
    project.run(at("2026-11-05"))
    assert stages(project, "stage") == [("active", "10-02", "11-05"), ("lapsed", "11-05", None)]
    assert not (root / ".retainer" / "state.duckdb").exists()


def test_history_commands(write_project: ProjectWriter) -> None:
    project = Project(write_project(rulebook=RULEBOOK, data={"events.csv": events(
        "2026-10-01")}))
    project.run(at("2026-10-02"))
    project.run(at("2026-11-05"))
    retainer = str(Path(sys.executable).parent / "retainer")

    def cli(*args: str, columns: int = 150) -> str:
        done = subprocess.run([retainer, *args, "-p", str(project.root)], capture_output=True,
                              text=True, timeout=120, env={"COLUMNS": str(columns)})
        assert done.returncode == 0, done.stderr
        return done.stdout

    runs = cli("runs")
    assert "2026-11-05" in runs and "succeeded" in runs
    assert " secs ┃ rulebook ┃ commit " in runs
    # An ordinary terminal: the least needed columns are left out, none is cut short.
    narrow = cli("runs", columns=80)
    assert " run ┃ kind ┃ as of      ┃ status    ┃ history ┃ read ┃ rejected " in narrow
    assert "…" not in narrow and "rulebook" not in narrow
    history = cli("history", "a1")
    assert "stage" in history and "lapsed" in history and "2026-11-05" in history
    flows = cli("flows", "--from", "2026-10-02", "--to", "2026-11-05", "--dimension", "stage")
    assert "active" in flows and "lapsed" in flows
    changes = cli("changes", "2")
    assert "run 2 as of 2026-11-05" in changes
    assert "lapsed" in changes and "entered" in changes and "exited" in changes


def test_a_backfill_with_its_dates_reversed_or_no_step_says_which(
        write_project: ProjectWriter) -> None:
    project = Project(write_project(rulebook=RULEBOOK, data={"events.csv": events(
        "2026-10-01")}))
    with pytest.raises(RetainerError) as reversed_dates:
        project.backfill(at("2026-11-01"), at("2026-10-01"), timedelta(days=7))
    assert reversed_dates.value.problem.message == \
        "backfill --from 2026-11-01 00:00 is after --to 2026-10-01 00:00"
    assert "swap them" in str(reversed_dates.value.problem.hint)
    with pytest.raises(RetainerError) as no_step:
        project.backfill(at("2026-10-01"), at("2026-11-01"), timedelta(0))
    assert no_step.value.problem.message == "backfill --every must be a positive step"
    assert not (project.root / ".retainer" / "state.duckdb").exists()  # nothing was begun
