"""`retainer validate` finds mistakes in syncs and says where they are and how to fix them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from retainer.errors import Problem
from retainer.project import Project
from retainer.sync.validate import problems
from tests.conftest import ProjectWriter
from tests.sync.project import make_project

RETAINER = str(Path(sys.executable).parent / "retainer")

BROKEN = """
destinations:
  out: {type: files, dir: out}
  bus: {type: rabbitmq}
syncs:
  unknown_destination:
    to: outt
  unknown_column:
    to: out
    columns: [name, activty]
  bad_where:
    to: out
    where: "activity > 3"
  changes_where:
    to: bus
    mode: changes
    columns: [activity, logins_30d]
    where: "vip"
  first:
    to: out
    table: shared
  second:
    to: out
    table: shared
  path_table:
    to: out
    table: ../escape
"""


def found(root: Path) -> list[Problem]:
    project = Project(root)
    catalog = project.catalog()
    return problems(project.rulebook, project.plan(catalog=catalog), catalog)


def test_every_mistake_is_reported_with_its_place(write_project: ProjectWriter) -> None:
    root = make_project(write_project, BROKEN)
    listed = {(p.message, p.location.line if p.location else None, p.hint) for p in found(root)}
    assert listed == {
        ("sync 'unknown_destination' sends to 'outt', which is not a declared destination",
         6, "did you mean 'out'?"),
        ("'activty' is not a column of the account results", 9, "did you mean 'activity'?"),
        ("'activity > 3' compares a text with a number", 12,
         "quote text values ('gold') and leave numbers bare (5); check which side is text"),
        ("sync 'changes_where' sends segment changes, and 'logins_30d' is not a "
         "dimension or tag of accounts", 16, "list dimensions and tags to follow (default: all of them)"),
        ("'where' does not apply to mode: changes", 17,
         "a changes sync sends every change of the dimensions and tags in 'columns'; "
         "remove 'where'"),
        ("sync 'first' (rulebook/syncs.yml:20) and sync 'second' (rulebook/syncs.yml:23) "
         "both write file 'shared.parquet' at destination 'out': each would overwrite the "
         "other's records", 23, "give one of them its own 'table'"),
        ("'../escape' cannot be a file name", 26,
         "use letters, digits, '_', '-' and '.' in 'table' (no '/')"),
    }


def test_validate_command_exits_2_and_sync_refuses(write_project: ProjectWriter) -> None:
    root = make_project(write_project, BROKEN)
    for command in (["validate"], ["sync"]):
        done = subprocess.run([RETAINER, *command, "-p", str(root)], capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr
        assert "syncs.yml:6:" in done.stderr and "did you mean 'out'?" in done.stderr
    assert not (root / "out").exists()


def test_a_valid_rulebook_has_no_problems(write_project: ProjectWriter) -> None:
    root = make_project(write_project, """
    destinations:
      out: {type: files, dir: out}
    syncs:
      busy: {to: out, mode: mirror, where: "activity = 'busy' and logins_30d >= 3"}
      moves: {to: out, mode: changes, columns: [activity, vip]}
      people: {to: out, entity: contact, columns: [role, practitioner]}
    """)
    assert found(root) == []
