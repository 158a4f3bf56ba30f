"""Two runs at once: the second is refused at once, whether the output database or the state
store (a DuckDB file lock, a PostgreSQL advisory lock) is held."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

from retainer.project import Project
from retainer.state.postgres_backend import split_schema
from tests.crash.checks import (
    Expected,
    assert_result,
    check_agreement,
    check_store,
    duckdb_lock_holders,
    pg_lock_holders,
    read_outputs,
)
from tests.crash.projects import (
    IN_USE,
    NEW,
    NEW_AS_OF,
    OLD_AS_OF,
    copy_project,
    retainer,
    start_run,
    wait_for,
)
from tests.demo_data import accounts_at


def refused(root: Path) -> str:
    """Run a second `retainer run` that must be refused at once; its error message."""
    began = time.perf_counter()
    done = retainer("run", "-p", root, "--as-of", "2026-11-20", ok=False, timeout=60)
    assert time.perf_counter() - began < 15, "the second run waited instead of refusing"
    assert done.returncode == 1, done.stdout + done.stderr
    assert IN_USE in done.stderr and "Run as of" not in done.stdout
    return " ".join(done.stderr.split())


def while_stopped(process: subprocess.Popen[str], holds_lock: Callable[[], bool],
                  body: Callable[[], None]) -> tuple[str, str]:
    """Once `process` holds its lock, freeze it (so it is still mid-run whatever the
    machine's speed), run `body`, then let it finish; its output."""
    try:
        wait_for(lambda: holds_lock() or process.poll() is not None, "the first run's lock")
        assert process.poll() is None, "the first run ended before the second started"
        os.kill(process.pid, signal.SIGSTOP)
        try:
            body()
        finally:
            os.kill(process.pid, signal.SIGCONT)
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0 and "Traceback" not in out + err, out + err
    return out, err


def test_a_second_run_is_refused_while_one_runs(demo: Path, tmp_path: Path,
                                                expected: dict[str, Expected]) -> None:
    root = copy_project(demo, tmp_path / "acme")
    project = Project(root)
    retainer("run", "-p", root, "--as-of", OLD_AS_OF)
    state_file = root / ".retainer" / "state.duckdb"
    # Another project (another output database) sharing this project's state store.
    other = copy_project(demo, tmp_path / "other", state=str(state_file),
                         output=".retainer/second")
    first = start_run(root, NEW_AS_OF)
    messages: list[str] = []

    def second_runs() -> None:
        messages.append(refused(root))  # the same project: its output database is held
        messages.append(refused(other))  # another output database: the state store is held

    out, _ = while_stopped(first, lambda: first.pid in duckdb_lock_holders(
        project.output_database) and first.pid in duckdb_lock_holders(state_file),
        second_runs)
    assert f"{project.output_database} is in use by another Retainer process" in messages[0]
    assert f"the state store {state_file} is in use by another Retainer process" \
        in messages[1]
    accounts = accounts_at(root, NEW)
    assert f"Run as of {NEW:%Y-%m-%d} 00:00 UTC — {accounts} accounts" in out

    outputs, state = read_outputs(project), check_store(project)
    assert_result(outputs, expected["new"])
    assert state.memberships == expected["new"].memberships
    check_agreement(outputs, state)
    # the refused runs recorded nothing and published nothing
    assert {i: r.status for i, r in state.runs.items()} == {1: "succeeded", 2: "succeeded"}
    assert outputs.run_info["run_id"] == 2
    second = Project(other)
    with duckdb.connect(str(second.output_database), read_only=True) as db:
        assert db.execute("SELECT count(*) FROM information_schema.tables").fetchall() == [(0,)]
    assert not second.export_dir.exists()


def test_a_second_run_is_refused_by_the_postgresql_lock(pg_state: str, demo: Path,
                                                        tmp_path: Path) -> None:
    root = copy_project(demo, tmp_path / "acme", state=pg_state)
    # The output database is opened first, so the second run gets another one: only the
    # store's advisory lock stands between the two runs.
    other = copy_project(demo, tmp_path / "other", state=pg_state, output=".retainer/second")
    project, second = Project(root), Project(other)
    assert second.output_database != project.output_database
    dsn, schema = split_schema(pg_state)
    assert schema
    first = start_run(root, NEW_AS_OF)
    messages: list[str] = []
    while_stopped(first, lambda: bool(pg_lock_holders(dsn, schema)),
                  lambda: messages.append(refused(other)))
    assert "the state store is in use by another Retainer process" in messages[0]

    outputs, state = read_outputs(project), check_store(project)
    assert outputs.as_of == NEW and outputs.run_info["run_id"] == 1
    check_agreement(outputs, state)
    assert {i: r.status for i, r in state.runs.items()} == {1: "succeeded"}
    with duckdb.connect(str(second.output_database), read_only=True) as db:
        assert db.execute("SELECT count(*) FROM information_schema.tables").fetchall() == [(0,)]
    assert not second.export_dir.exists()
