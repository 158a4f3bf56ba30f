"""Runs that fail: mid-way they leave a 'failed' run and the previous outputs; after
publishing they never disown the published run."""

from __future__ import annotations

import subprocess
import time
from datetime import datetime
from pathlib import Path

import duckdb

from retainer.project import Project
from tests.crash.checks import (
    Expected,
    assert_result,
    check_agreement,
    check_store,
    fresh_next_files,
    open_store_when_free,
    read_outputs,
    read_tables,
    staging_tables,
)
from tests.crash.projects import (
    ENV,
    NEW,
    NEW_AS_OF,
    OLD_AS_OF,
    RETAINER,
    copy_project,
    exports,
    retainer,
    runs_listing,
)
from tests.demo_data import accounts_at


class DisownedRun(AssertionError):
    """A recorded, published run is marked failed (a src bug)."""


def test_a_run_that_fails_midway_leaves_a_failed_run_and_the_old_outputs(
        demo: Path, tmp_path: Path, expected: dict[str, Expected]) -> None:
    root = copy_project(demo, tmp_path / "acme")
    project = Project(root)
    retainer("run", "-p", root, "--as-of", OLD_AS_OF)
    before = read_outputs(project)
    assert_result(before, expected["old"])
    names = exports(project)
    exported = {name: (project.export_dir / name).read_bytes() for name in names}

    def fails(message: str) -> int:
        since = time.time_ns()
        done = retainer("run", "-p", root, "--as-of", NEW_AS_OF, ok=False)
        assert done.returncode == 1 and message in done.stderr, done.stderr
        after = read_outputs(project)
        assert after == before
        assert {n: (project.export_dir / n).read_bytes() for n in names} == exported
        state = check_store(project)
        assert state.memberships == expected["old"].memberships
        check_agreement(after, state)
        run_id = max(state.runs)
        failed = state.runs[run_id]
        assert failed.status == "failed" and not failed.in_history and failed.as_of == NEW
        assert failed.error and message in failed.error and failed.finished_at is not None
        written = {n for n in fresh_next_files(project.export_dir, since)
                   if (project.export_dir / n).is_file()}
        assert written <= ({f"{n}.next" for n in names} - {blocked.name})
        if "export" not in message:
            assert not written
        return run_id

    blocked = project.export_dir / f"{names[0]}.next"

    # 1. A conversion error while computing: a score past the type sniffer's sample is text.
    surveys = root / "data" / "surveys.csv"
    original = surveys.read_text(encoding="utf-8")
    padding = "".join(f'"X{i:07d}","C0000674","csat",4,2026-10-01 10:00:00,\n'
                      for i in range(40_000))
    surveys.write_text(original + padding + '"XBAD","C0000674","csat",n/a,2026-10-01 '
                       "10:00:00,\n", encoding="utf-8")
    converting = fails("a value could not be converted")
    assert 'Could not convert string "n/a"' in (check_store(project).runs[converting].error
                                                or "")
    surveys.write_text(original, encoding="utf-8")

    # 2. An export that cannot be written, after some exports were: the *.next file written
    #    is never taken for an export, and nothing is published.
    blocked.mkdir()
    exporting = fails(f"export to {blocked.name}")
    blocked.rmdir()

    # The store is not wedged: the next run succeeds, and the failures stay listed.
    retainer("run", "-p", root, "--as-of", NEW_AS_OF)
    outputs, state = read_outputs(project), check_store(project)
    assert_result(outputs, expected["new"])
    assert state.memberships == expected["new"].memberships
    check_agreement(outputs, state)
    assert not list(project.export_dir.glob("*.next"))
    with duckdb.connect(str(project.output_database), read_only=True) as db:
        assert not staging_tables(db)
    listed = runs_listing(root)
    assert (listed[converting], listed[exporting], listed[max(listed)]) == (
        "failed", "failed", "succeeded")


def test_a_failure_after_publishing_does_not_disown_the_published_run(
        demo: Path, tmp_path: Path) -> None:
    root = copy_project(demo, tmp_path / "acme")
    project = Project(root)
    retainer("run", "-p", root, "--as-of", OLD_AS_OF)
    # Renaming the new export into place fails — after the store and the outputs committed.
    final = project.export_dir / exports(project)[0]
    final.unlink()
    final.mkdir()
    done = subprocess.run([RETAINER, "run", "-p", str(root), "--as-of", NEW_AS_OF],
                          capture_output=True, text=True, timeout=180, env=ENV)
    tables, _, info = read_tables(project)
    store = open_store_when_free(project)
    try:
        status = {int(r[0]): str(r[1]) for r in store.backend.fetch(
            "SELECT run_id, status FROM runs WHERE in_history")}
    finally:
        store.close()
    published_as_of = datetime.fromisoformat(info["as_of"])
    assert len(tables["account_results"]) == accounts_at(root, published_as_of)
    # Either the new run is published and recorded as such, or nothing changed; runs in
    # history are good runs.
    if datetime.fromisoformat(info["as_of"]) == NEW and \
            status.get(info["run_id"]) != "succeeded":
        raise DisownedRun(f"run {info['run_id']} is published, but the runs in history are "
                          f"{status} (exit {done.returncode})")
    assert set(status.values()) == {"succeeded"}, status
