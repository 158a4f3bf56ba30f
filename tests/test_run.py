"""A full run on files: published tables, exports, the quality report, and failure safety."""

from __future__ import annotations

import csv
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from retainer.errors import DataError, RetainerError, ValidationError
from retainer.project import Project
from tests.conftest import ProjectWriter

AS_OF = datetime(2026, 12, 1)
RULEBOOK = {"main.yml": """
    traits:
      logins_30d: {count: events, where: "name = 'login'", window: 30d}
      features: {count_distinct: feature, from: events}
    segments:
      activity:
        - active: "logins_30d > 0"
        - idle: else
    """}


def published(root: Path, table: str = "account_results") -> list[tuple[object, ...]]:
    with duckdb.connect(str(root / ".retainer" / "output.duckdb"), read_only=True) as db:
        return db.sql(f"SELECT * FROM {table} ORDER BY 1").fetchall()


def test_run_publishes_tables_and_exports(write_project: ProjectWriter) -> None:
    root = write_project(rulebook=RULEBOOK)
    report = Project(root).run(AS_OF)
    assert report.accounts == 2
    assert report.dimensions == {"activity": [("active", 1), ("idle", 1)]}
    rows = published(root)
    assert [(r[0], r[1], r[2], r[4]) for r in rows] == [("a1", "Acme", 1, "active"),
                                                        ("a2", "Globex", 0, "idle")]
    with (root / ".retainer/export/account_results.csv").open() as handle:
        exported = list(csv.DictReader(handle))
    assert [row["activity"] for row in exported] == ["active", "idle"]
    parquet = root / ".retainer/export/account_results.parquet"
    assert duckdb.sql(f"SELECT count(*) FROM '{parquet}'").fetchall() == [(2,)]
    assert not list((root / ".retainer/export").glob("*.next"))


def test_quality_report_counts_every_unusable_row(write_project: ProjectWriter) -> None:
    root = write_project(rulebook=RULEBOOK, data={
        "accounts.csv": "account_id,name,created_at\na1,Acme,2026-01-01\na1,Acme again,"
                        "2026-02-01\n,Nobody,2026-01-01\na2,Globex,not a date\n",
        "events.csv": "account_id,user_id,ts,name,feature\n"
                      "a1,c1,2026-11-29 10:00:00,login,\n"
                      ",c1,2026-11-29 10:00:00,login,\n"
                      "ghost,c1,2026-11-29 10:00:00,login,\n"
                      "a1,c1,whenever,login,\n"
                      "a1,c1,2026-12-02 10:00:00,login,\n"
                      "a1,c1,2099-01-01 10:00:00,login,\n"})
    report = Project(root).run(AS_OF)
    quality = {row.source: row for row in report.quality}
    accounts, events = quality["accounts"], quality["events"]
    assert (accounts.rows_read, accounts.missing_id, accounts.duplicate_id,
            accounts.bad_time) == (4, 1, 1, 1)
    assert (events.rows_read, events.missing_id, events.unknown_id, events.bad_time,
            events.after_as_of, events.future_dated) == (6, 1, 1, 1, 2, 1)
    # The duplicate account keeps its latest row; the bad rows count for nothing — Globex,
    # created at a time nobody can read, is rejected like them, not counted and used.
    rows = published(root)
    assert [(r[0], r[1], r[2]) for r in rows] == [("a1", "Acme again", 1)]
    assert report.accounts == 1


def test_a_failed_run_leaves_the_previous_output_intact(write_project: ProjectWriter) -> None:
    root = write_project(rulebook=RULEBOOK)
    Project(root).run(AS_OF)
    before = published(root)
    export = (root / ".retainer/export/account_results.csv").read_bytes()
    # Now the events file holds a value that cannot be converted mid-run.
    (root / "data/events.csv").write_text("account_id,user_id,ts,name,feature\n"
                                          "a1,c1,2026-11-29 10:00:00,login,\n")
    (root / "rulebook/main.yml").write_text(
        "traits:\n  broken: {sum: \"cast(name as int)\", from: events}\n")
    with pytest.raises(RetainerError) as caught:
        Project(root).run(AS_OF)
    assert "could not be converted" in caught.value.problem.message
    assert published(root) == before
    assert (root / ".retainer/export/account_results.csv").read_bytes() == export


def test_an_invalid_rulebook_never_touches_the_output(write_project: ProjectWriter) -> None:
    root = write_project(rulebook=RULEBOOK)
    Project(root).run(AS_OF)
    before = published(root)
    (root / "rulebook/main.yml").write_text("traits:\n  x: \"nope > 1\"\n")
    with pytest.raises(ValidationError):
        Project(root).run(AS_OF)
    assert published(root) == before


def test_unreadable_source_file(write_project: ProjectWriter) -> None:
    root = write_project(rulebook=RULEBOOK)
    (root / "data/events.csv").write_bytes(b"\x00\xff\xfe garbage \x00\n\x01\x02")
    with pytest.raises(DataError) as caught:
        Project(root).plan(AS_OF)
    assert "cannot read source 'events'" in caught.value.problem.message \
        or "does not exist" in caught.value.problem.message


def test_a_second_writer_waits_for_no_one_and_says_so(write_project: ProjectWriter) -> None:
    root = write_project(rulebook=RULEBOOK)
    project = Project(root)
    project.run(AS_OF)
    before = published(root)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; db = duckdb.connect(sys.argv[1]); "
         "print('ready', flush=True); time.sleep(60)", str(project.output_database)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        with pytest.raises(RetainerError) as caught:
            project.run(AS_OF)
        assert "in use by another Retainer process" in caught.value.problem.message
    finally:
        holder.kill()
        holder.wait()
    assert published(root) == before
    project.run(AS_OF)
