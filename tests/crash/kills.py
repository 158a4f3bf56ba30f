"""Killing `retainer run` with SIGKILL — at moments picked by time or by watching its files,
or at exact steps by a hook inside the process — and checking everything after each kill."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from retainer.project import Project
from tests.crash.checks import (
    Expected,
    Outputs,
    assert_result,
    check_agreement,
    check_store,
    file_version,
    fresh_next_files,
    new_result,
    parse_export,
    raw_statuses,
    read_outputs,
    staging_tables,
)
from tests.crash.projects import (
    ENV,
    NEW,
    NEW_AS_OF,
    OLD,
    OLD_AS_OF,
    exports,
    retainer,
    runs_listing,
    start_run,
)
from tests.demo_data import accounts_at


class StaleExports(AssertionError):
    """The outputs are published but the exports are still the previous run's (a src bug)."""


@dataclass
class Kill:
    strategy: tuple[Any, ...]
    killed: bool = False  # False: the run had finished before the signal
    exports_at_kill: int = 0  # fresh *.next files present when the signal was sent
    seconds: float = 0.0
    run_id: int | None = None
    raw_status: str | None = None  # the run's status on disk right after the kill
    phase: str = ""
    published: bool = False  # the outputs are this run's
    store_ahead: bool = False  # the store recorded a run whose outputs are not published
    stale_exports: int = 0  # published, but exports not renamed into place yet
    since: int = 0  # when the run started (time.time_ns)


def kill_run(root: Path, project: Project, strategy: tuple[Any, ...],
             as_of: str = NEW_AS_OF) -> Kill:
    """Start `retainer run --as-of <as_of>` and SIGKILL it when `strategy` says:
    ("delay", s) s seconds after start; ("first-export",) as soon as a fresh *.next export
    appears; ("exports", s) s seconds after all fresh *.next exports appeared;
    ("store-commit",) / ("outputs-commit",) as soon as the DuckDB state store's / the output
    database's write-ahead log changes after all exports appeared (the store's commit, then
    the outputs' one, are being written); ("renamed",) as soon as the fresh *.next files
    were renamed into place."""
    kill = Kill(strategy, since=time.time_ns())
    began = time.perf_counter()
    process = start_run(root, as_of)
    seen_at: float | None = None
    wal = {"store-commit": project.root / f"{project.rulebook.config.state}.wal",
           "outputs-commit": Path(f"{project.output_database}.wal")}.get(strategy[0])
    wal_before: tuple[int, int] | None = None
    count = len(exports(project))
    try:
        while process.poll() is None:
            now = time.perf_counter() - began
            assert now < 120, "a run did not finish"
            fresh = fresh_next_files(project.export_dir, kill.since)
            if strategy[0] == "delay":
                due = now >= strategy[1]
            elif strategy[0] == "renamed":
                seen_at = now if fresh else seen_at
                due = seen_at is not None and not fresh
            elif strategy[0] == "first-export":
                due = bool(fresh)
            elif strategy[0] == "exports":
                if seen_at is None and len(fresh) == count:
                    seen_at = now
                due = seen_at is not None and now >= seen_at + strategy[1]
            else:
                assert wal is not None, strategy
                wal_now = file_version(wal)
                if wal_before is None and len(fresh) == count:
                    wal_before = wal_now
                due = wal_before is not None and wal_now != wal_before
            if due:
                process.send_signal(signal.SIGKILL)
                kill.exports_at_kill, kill.seconds = len(fresh), now
                break
            time.sleep(0.002)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    kill.killed = process.returncode == -signal.SIGKILL
    assert kill.killed or process.returncode == 0, (process.returncode, out[-2000:], err[-2000:])
    assert "Traceback" not in out + err
    return kill


# Runs the CLI with a hook that SIGKILLs the process when it reaches a step: the nth call of
# Store.record, DuckDBEngine.publish_staged, summarize, or the rename of a *.next export.
INJECT = """
import os, signal, sys
from pathlib import Path

import retainer.project
from retainer.cli.main import app
from retainer.engines.duckdb import DuckDBEngine
from retainer.state.store import Store

point, nth = sys.argv[1], int(sys.argv[2])
owner, name = {"record": (Store, "record"), "publish": (DuckDBEngine, "publish_staged"),
               "summarize": (retainer.project, "summarize"), "rename": (Path, "replace")}[point]
original, calls = getattr(owner, name), []

def hooked(*args, **kwargs):
    if point != "rename" or str(args[0]).endswith(".next"):
        calls.append(1)
        if len(calls) == nth:
            os.kill(os.getpid(), signal.SIGKILL)
    return original(*args, **kwargs)

setattr(owner, name, hooked)
sys.argv = ["retainer", *sys.argv[3:]]
app()
"""


def inject_kill(root: Path, project: Project, point: str, nth: int = 1) -> Kill:
    """`retainer run --as-of NEW_AS_OF`, killed when it reaches `point` for the nth time."""
    kill = Kill(("inject", point, nth), since=time.time_ns())
    done = subprocess.run([sys.executable, "-c", INJECT, point, str(nth), "run", "-p",
                           str(root), "--as-of", NEW_AS_OF], capture_output=True, text=True,
                          timeout=180, env=ENV)
    assert done.returncode == -signal.SIGKILL, (done.returncode, done.stderr[-3000:])
    kill.killed = True
    kill.exports_at_kill = len(fresh_next_files(project.export_dir, kill.since))
    return kill


Position = tuple[Outputs, datetime, int]  # outputs, the store's latest as_of, last run id


def check_after_kill(kill: Kill, project: Project, expected: dict[str, Expected],
                     before: Position, tolerate_stale_exports: bool = False) -> Position:
    """Everything a kill may leave behind, checked. `before` is the position before the
    run started; returns the position after it."""
    out_before, store_before, last_id = before
    Project(project.root)  # whoever opens the project next completes an interrupted publish
    raw = raw_statuses(project)
    new_ids = sorted(i for i in raw if i > last_id)
    assert len(new_ids) <= 1
    if new_ids:
        kill.run_id, kill.raw_status = new_ids[0], raw[new_ids[0]]
        # a SIGKILL leaves no chance to record a failure: the run was running or recorded
        assert kill.raw_status in ("running", "succeeded")
    assert all(status != "running" for i, status in raw.items() if i <= last_id)

    # the output database opens, and holds one complete result
    outputs = read_outputs(project, exports_match=False)
    kill.published = outputs.run_info["run_id"] == kill.run_id
    if kill.published:
        # the complete new result in every table (never a mix, never partial) ...
        assert kill.raw_status == "succeeded", "outputs the store never recorded"
        new = new_result(expected, store_before).outputs
        assert_result(outputs, Expected(new, []), exports=False)
        # ... and in every export, once renamed into place
        fresh = {n.removesuffix(".next") for n in fresh_next_files(project.export_dir,
                                                                    kill.since)}
        pending = sorted(fresh & set(outputs.exports))
        kill.stale_exports = len(pending)
        if pending and not tolerate_stale_exports:
            raise StaleExports(f"the outputs are published, but {pending} still hold the "
                               "previous run's rows (the new ones are stranded in *.next)")
        for name, rows in outputs.exports.items():
            if name in pending:  # the known window, exactly: old export, new one beside it
                assert rows == out_before.exports[name]
                assert parse_export(project.export_dir / f"{name}.next") == new.exports[name]
            else:
                assert rows == new.exports[name], f"{name} is not the new export"
    else:
        assert outputs == out_before, "the outputs changed, but not to this run's result"
    state = check_store(project)  # the store opens (and marks the killed run interrupted)
    assert state.as_of in (OLD, NEW) and state.as_of >= store_before, "history went back"
    assert state.memberships == expected["new" if state.as_of == NEW else "old"].memberships
    if kill.run_id is not None:
        status = state.runs[kill.run_id]
        assert status.as_of == NEW
        if kill.raw_status == "running":
            assert status.status == "interrupted" and not status.in_history
            assert status.finished_at is None and status.error is None
        else:
            assert status.status == "succeeded" and status.in_history
            assert state.latest == kill.run_id

    # The published run is known to the store (which commits first) at the same as_of.
    info_run = state.runs[outputs.run_info["run_id"]]
    assert info_run.as_of == outputs.as_of and info_run.status in ("succeeded", "superseded")
    assert outputs.as_of <= state.as_of
    if outputs.run_info["run_id"] == state.latest:
        check_agreement(outputs, state)
    else:
        # The documented window: the store recorded a run, and the outputs' commit did not
        # happen. The next run repairs it (checked at the end).
        assert state.as_of == NEW and state.runs[state.latest].status == "succeeded"
        kill.store_ahead = state.latest == kill.run_id

    if not kill.killed or (kill.published and not kill.stale_exports):
        kill.phase = "after"
    elif kill.exports_at_kill or kill.stale_exports:
        kill.phase = "during"
    else:
        kill.phase = "before"
    return outputs, state.as_of, max(raw)


def kill_campaign(root: Path, expected: dict[str, Expected], delays: int,
                  extra: list[tuple[Any, ...]], first: tuple[Any, ...] | None = None
                  ) -> list[Kill]:
    """A good run at OLD_AS_OF, then runs at NEW_AS_OF killed at the `first` kill point, at
    `delays` evenly spread moments from 0 to 110 % of a run's wall time and at the `extra`
    kill points; then a normal run, which must succeed and list the killed runs as
    interrupted."""
    project = Project(root)
    retainer("run", "-p", root, "--as-of", OLD_AS_OF)  # creates the stores
    # Then a typical run (it replaces that one), timed while watched as killed runs are.
    began = time.perf_counter()
    assert not kill_run(root, project, ("delay", float("inf")), OLD_AS_OF).killed
    wall = time.perf_counter() - began
    outputs, state = read_outputs(project), check_store(project)
    assert_result(outputs, expected["old-again"])
    assert state.memberships == expected["old"].memberships
    check_agreement(outputs, state)
    good_run = state.latest

    strategies = [("delay", round(1.1 * wall * i / (delays - 1), 3)) for i in range(delays)]
    kills = []
    position: Position = (outputs, state.as_of, max(state.runs))
    for strategy in [*([first] if first else []), *strategies, *extra]:
        kill = kill_run(root, project, strategy)
        try:
            position = check_after_kill(kill, project, expected, position,
                                        tolerate_stale_exports=True)
        except AssertionError as exc:
            raise AssertionError(f"after {kill}: {exc}") from exc
        kills.append(kill)
    recover(root, project, expected, position, kills, good_run)

    phases = Counter(k.phase for k in kills)
    summary = (f"{len(kills)} kill points ({sum(k.killed for k in kills)} killed alive, "
               f"{sum(k.run_id is None for k in kills)} before the run was recorded): "
               f"{phases['before']} before publish, {phases['during']} during, "
               f"{phases['after']} after; {sum(k.store_ahead for k in kills)} left the store "
               f"ahead of the outputs, {sum(bool(k.stale_exports) for k in kills)} left "
               f"stale exports; one run {wall:.2f}s")
    print(f"\n{root.name}: {summary}")
    for kill in kills:
        print(f"  {kill.strategy} at {kill.seconds:.3f}s killed={kill.killed} "
              f"run={kill.run_id} {kill.raw_status} exports={kill.exports_at_kill} "
              f"published={kill.published} → {kill.phase}")
    return kills


def recover(root: Path, project: Project, expected: dict[str, Expected], position: Position,
            kills: list[Kill], good_run: int) -> None:
    """A normal run after the kills succeeds, publishes the new result, repairs any window,
    and `retainer runs` lists every killed run as interrupted (or, when it had been recorded
    before the kill, as superseded by this run)."""
    done = retainer("run", "-p", root, "--as-of", NEW_AS_OF)
    accounts = accounts_at(root, NEW)
    assert f"Run as of {NEW:%Y-%m-%d} 00:00 UTC — {accounts} accounts" in done.stdout
    outputs, state = read_outputs(project), check_store(project)
    assert_result(outputs, new_result(expected, position[1]))
    assert state.memberships == expected["new"].memberships
    assert outputs.run_info["run_id"] == state.latest == max(state.runs)
    check_agreement(outputs, state)
    assert not list(project.export_dir.glob("*.next"))
    with duckdb.connect(str(project.output_database), read_only=True) as db:
        assert not staging_tables(db), "a good run leaves staged tables behind"
    listed = runs_listing(root)
    assert listed == {i: r.status for i, r in state.runs.items()}
    assert listed[good_run] == "succeeded" and listed[state.latest] == "succeeded"
    for kill in kills:
        if kill.raw_status == "running":
            assert listed[kill.run_id] == "interrupted", kill
        elif kill.raw_status == "succeeded":
            assert listed[kill.run_id] == "superseded", kill  # replaced by the same as_of
    assert "running" not in listed.values()
    assert sum(s == "interrupted" for s in listed.values()) == \
        sum(k.raw_status == "running" for k in kills) > 0


def baseline(root: Path, expected: dict[str, Expected]) -> tuple[Project, Position, int]:
    """A good run at OLD_AS_OF; the project, the position after it and the run's id."""
    project = Project(root)
    retainer("run", "-p", root, "--as-of", OLD_AS_OF)
    outputs, state = read_outputs(project), check_store(project)
    assert_result(outputs, expected["old"])
    check_agreement(outputs, state)
    return project, (outputs, state.as_of, max(state.runs)), state.latest
