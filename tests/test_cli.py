"""The command line as a user meets it: real processes, exit codes, and no tracebacks."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from tests.demo_data import accounts_at

RETAINER = str(Path(sys.executable).parent / "retainer")


def retainer(*args: str | Path, ok: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([RETAINER, *map(str, args)], capture_output=True, text=True,
                          timeout=300, env={"COLUMNS": "120", "PATH": "/usr/bin:/bin"})
    assert "Traceback" not in done.stderr + done.stdout
    if ok:
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli") / "acme"
    created = retainer("init", root, "--accounts", "80", "--seed", "3")
    assert "80 accounts" in created.stdout
    return root


def test_init_refuses_a_non_empty_directory(project: Path) -> None:
    done = retainer("init", project, ok=False)
    assert done.returncode == 1
    assert "is not empty" in done.stderr and "--force" in done.stderr


def test_validate_run_explain_compile_and_test(project: Path) -> None:
    assert "✓ acme_saas: 8 sources" in retainer("validate", "-p", project).stdout
    run = retainer("run", "-p", project, "--as-of", "2026-11-01").stdout
    accounts = accounts_at(project, datetime(2026, 11, 1))
    assert accounts < 80  # some of the demo's accounts sign up after that date
    assert f"Run as of 2026-11-01 00:00 UTC — {accounts} accounts" in run
    for heading in ("segment: lifecycle", "health bands", "tags", "data quality"):
        assert heading in run
    explained = retainer("explain", "A000001", "-p", project).stdout
    assert "account A000001" in explained and "lifecycle:" in explained
    assert "health:" in explained and "as of 2026-11-01 00:00:00 UTC" in explained
    sql = retainer("compile", "-p", project, "--dialect", "postgres").stdout
    # PostgreSQL has CREATE OR REPLACE for views only: tables are dropped first.
    assert sql.count("CREATE OR REPLACE VIEW") >= 5 and "ARRAY_AGG" in sql
    assert sql.count("DROP TABLE IF EXISTS") == sql.count("CREATE TABLE") >= 10
    tested = retainer("test", "-p", project).stdout
    assert "6 passed, 0 failed" in tested


def test_explain_an_unknown_id_suggests_real_ones(project: Path) -> None:
    retainer("run", "-p", project, "--as-of", "2026-11-01")
    done = retainer("explain", "A00001", "-p", project, ok=False)
    assert done.returncode == 1
    assert "no account with id 'A00001'" in done.stderr
    assert "did you mean" in done.stderr


def test_invalid_rulebook_exits_2_with_file_and_line(project: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    subprocess.run(["cp", "-r", str(project), str(broken)], check=True)
    segments = broken / "rulebook" / "segments.yml"
    segments.write_text(segments.read_text().replace("tenure_days <= 30", "tenure_dys <= 30"))
    line = next(n for n, text in enumerate(segments.read_text().splitlines(), 1)
                if "tenure_dys" in text)
    for command in ("validate", "run"):
        done = retainer(command, "-p", broken, ok=False)
        assert done.returncode == 2
        assert f"segments.yml:{line}:" in done.stderr
        assert "did you mean 'tenure_days'?" in done.stderr


def test_failing_rule_test_exits_1_with_a_diff(project: Path, tmp_path: Path) -> None:
    changed = tmp_path / "changed"
    subprocess.run(["cp", "-r", str(project), str(changed)], check=True)
    tests = changed / "tests" / "lifecycle.yml"
    tests.write_text(tests.read_text().replace("a2: {lifecycle: lapsed", "a2: {lifecycle: new"))
    done = retainer("test", "-p", changed, ok=False)
    assert done.returncode == 1
    assert "5 passed, 1 failed" in done.stdout
    assert "lapsed: matched" in done.stdout  # the diff says which rule matched instead


def test_bad_arguments_are_explained(project: Path) -> None:
    done = retainer("compile", "-p", project, "--dialect", "oracle", ok=False)
    assert done.returncode == 1 and "unknown dialect 'oracle'" in done.stderr
    done = retainer("run", "-p", project, "--as-of", "last tuesday", ok=False)
    assert done.returncode == 1 and "'last tuesday' is not a date or time" in done.stderr
    assert "write --as-of 2026-11-30" in done.stderr
    # The hint names the option that was given, not always --as-of.
    done = retainer("backfill", "-p", project, "--from", "2026-11-01", "--to", "soon", ok=False)
    assert done.returncode == 1 and "'soon' is not a date or time" in done.stderr
    assert "write --to 2026-11-30" in done.stderr and "--as-of" not in done.stderr
    done = retainer("validate", "-p", project / "nowhere", ok=False)
    assert done.returncode != 0


def test_missing_data_file_is_reported_with_its_source(project: Path, tmp_path: Path) -> None:
    moved = tmp_path / "moved"
    subprocess.run(["cp", "-r", str(project), str(moved)], check=True)
    (moved / "data" / "tickets.csv").unlink()
    done = retainer("run", "-p", moved, ok=False)
    assert done.returncode == 1
    assert "retainer.yml:12:" in done.stderr
    assert "source 'tickets': no file matches data/tickets.csv" in done.stderr
