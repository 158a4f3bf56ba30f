"""Running Retainer's command line on copies of the demo project, for the crash tests."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from retainer.project import Project

RETAINER = str(Path(sys.executable).parent / "retainer")
ENV = {"COLUMNS": "200", "PATH": "/usr/bin:/bin"}
ACCOUNTS = 300  # in the demo data; a run covers those created by its as_of
OLD_AS_OF, NEW_AS_OF = "2026-11-01", "2026-11-15"
OLD, NEW = datetime(2026, 11, 1), datetime(2026, 11, 15)
STATUSES = {"succeeded", "failed", "interrupted", "superseded"}
PG_SERVER = "postgresql://postgres@127.0.0.1:5432/test"
IN_USE = "in use by another Retainer process"


def retainer(*args: str | Path, ok: bool = True, timeout: float = 180
             ) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([RETAINER, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=ENV)
    assert "Traceback" not in done.stderr + done.stdout, done.stderr[-3000:]
    if ok:
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def start_run(root: Path, as_of: str) -> subprocess.Popen[str]:
    return subprocess.Popen([RETAINER, "run", "-p", str(root), "--as-of", as_of],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def runs_listing(root: Path) -> dict[int, str]:
    """run id → status, as `retainer runs` prints them."""
    statuses = {}
    for line in retainer("runs", "-p", root, "--limit", "500").stdout.splitlines():
        cells = [cell.strip() for cell in line.split("│")]
        if len(cells) >= 4 and cells[0].isdigit():
            statuses[int(cells[0])] = cells[3]
    return statuses


def exports(project: Project) -> list[str]:
    """The export files a run writes (`<name>.next` first, renamed into place after)."""
    return [f"{name}.{fmt}" for name in ("account_results", "contact_results")
            for fmt in project.rulebook.config.output.formats]


def copy_project(demo: Path, target: Path, state: str | None = None,
                 output: str | None = None) -> Path:
    """A fresh copy of the demo project (without results), optionally with another state
    store (a top-level `state:`) and another output database and export directory."""
    shutil.copytree(demo, target, ignore=shutil.ignore_patterns(".retainer"))
    config = target / "retainer.yml"
    text = config.read_text(encoding="utf-8")
    if output is not None:
        assert text.count("\noutput:\n") == 1
        text = text.replace("\noutput:\n", f"\noutput:\n  database: {output}/output.duckdb\n"
                                           f"  export_dir: {output}/export\n")
    if state is not None:
        text += f"\nstate: {state}\n"
    config.write_text(text, encoding="utf-8")
    return target
