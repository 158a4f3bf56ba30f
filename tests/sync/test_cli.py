"""`retainer sync` as a user meets it: real processes, readable output, exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner, Result

from retainer.cli.main import app
from retainer.project import Project
from tests.conftest import ProjectWriter
from tests.sync.project import DAY, make_project
from tests.sync.receiver import free_port, running

RETAINER = str(Path(sys.executable).parent / "retainer")


def retainer(root: Path, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    """The command as a user runs it, in its own process."""
    done = subprocess.run([RETAINER, *args, "-p", str(root)], capture_output=True, text=True,
                          timeout=120, env={"COLUMNS": "100", "PATH": "/usr/bin:/bin"})
    assert "Traceback" not in done.stdout + done.stderr
    assert done.returncode == code, done.stdout + done.stderr
    return done


def quick(root: Path, *args: str, code: int = 0) -> Result:
    """The same command in this process (for the views that only read; saves a start-up)."""
    done = CliRunner().invoke(app, [*args, "-p", str(root)], env={"COLUMNS": "100"})
    assert done.exception is None or isinstance(done.exception, SystemExit), done.exception
    assert done.exit_code == code, done.stdout + done.stderr
    return done


def test_sync_commands_from_dry_run_to_a_failure_and_back(write_project: ProjectWriter) -> None:
    port = free_port()
    root = make_project(write_project, f"""
    destinations:
      out: {{type: files, dir: out, format: csv}}
      hook: {{type: webhook, url: "http://127.0.0.1:{port}/in", retries: 1, backoff: 0.01,
              batch: 2}}
    syncs:
      accounts: {{to: out, mode: mirror, columns: [name, activity]}}
      pushed: {{to: hook}}
    """, count=5)
    assert "no results yet" in retainer(root, "sync", code=1).stderr
    Project(root).run(DAY)
    plan = retainer(root, "sync", "accounts", "--dry-run", "--limit", "2").stdout
    assert "accounts → out (files) accounts, mirror: 5 to upsert, 0 to delete, 0 unchanged" \
        in plan
    assert "add a01 name = Company a01, activity = quiet" in plan
    assert "… and 3 more (--limit)" in plan
    assert not (root / "out").exists()

    failed = retainer(root, "sync", code=1)
    assert "✓ accounts → out (files) accounts: 5 upserted, 0 deleted" in failed.stdout
    assert "✗ sync pushed failed: 5 of 5 record(s) not delivered to hook (webhook) pushed" \
        in failed.stderr
    assert "2 in the dead-letter store after 2 attempt(s)" in failed.stderr
    assert "3 not attempted (the sync stopped)" in failed.stderr
    assert "cannot reach" in failed.stderr and "next 'retainer sync pushed'" in failed.stderr
    assert "destination 'hook' sends unsigned requests" in failed.stderr
    letters = quick(root, "sync", "--dead-letters").stdout
    assert "pushed" in letters and "a01, a02" in letters and "2 record(s) wait" in letters

    with running(port=port) as server:
        done = retainer(root, "sync")
    assert "✓ pushed → hook (webhook) pushed: 5 upserted, 2 from the dead-letter store" \
        in done.stdout
    assert "0 upserted, 0 deleted, 5 unchanged" in done.stdout
    assert len(server.records()) == 5
    assert "the dead-letter store is empty" in quick(root, "sync", "--dead-letters").stdout
    log = quick(root, "sync", "--log").stdout
    assert log.count("succeeded") == 3 and "failed" in log and "dead-lettered" in log
    assert "nothing new" in log and "nothing delivered" in log
    assert "no sync named 'push'" in quick(root, "sync", "push", code=1).stderr
    syncs = root / "rulebook" / "syncs.yml"
    syncs.write_text(syncs.read_text().replace("{to: hook}", "{to: hook, description: x}"))
    stale = quick(root, "sync", "--dry-run").stderr
    assert "published results were computed by another version of the rulebook" in stale
