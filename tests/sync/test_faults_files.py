"""Files faults: the directory cannot be written, the file is damaged. The next sync after
the fix leaves exactly the published results in the file."""

from __future__ import annotations

import shutil
from pathlib import Path

from retainer.destinations.files import FilesDestination
from retainer.project import Project
from tests.conftest import ProjectWriter
from tests.sync.faults import CASES, FaultCase, expected, store_settled, sync_once
from tests.sync.project import DAY, make_project

SYNCS = """
destinations:
  out: {type: files, dir: out/crm, format: parquet}
syncs:
  accounts: {to: out, mode: mirror, columns: [name, activity, vip]}
"""


def held(root: Path) -> dict[str, object]:
    rows = FilesDestination("out", root / "out" / "crm").read("accounts")
    return {key: {k: v for k, v in row.items() if k not in ("key", "entity_id")}
            for key, row in rows.items()}


def recover(root: Path, fault: str, failed: bool) -> None:
    [good] = sync_once(root)
    exact = good.status == "succeeded" and held(root) == expected(root, "accounts")
    settled = store_settled(root, "accounts")
    CASES.append(FaultCase("files", fault, failed, exact and settled))
    assert exact and settled


def test_directory_cannot_be_created(write_project: ProjectWriter) -> None:
    root = make_project(write_project, SYNCS, count=8)
    Project(root).run(DAY)
    (root / "out").write_text("a file where the directory should be")
    [bad] = sync_once(root)
    assert bad.status == "failed" and bad.failed == 8 and "cannot write" in (bad.error or "")
    (root / "out").unlink()
    recover(root, "cannot write (the directory is blocked)", bad.status == "failed")


def test_damaged_file_is_reported_not_overwritten(write_project: ProjectWriter) -> None:
    root = make_project(write_project, SYNCS, count=8)
    Project(root).run(DAY)
    (root / "out" / "crm").mkdir(parents=True)
    (root / "out" / "crm" / "accounts.parquet").write_text("damaged")
    [bad] = sync_once(root)
    assert bad.status == "failed" and "cannot read" in (bad.error or "")
    assert (root / "out" / "crm" / "accounts.parquet").read_text() == "damaged"
    shutil.move(root / "out" / "crm" / "accounts.parquet", root / "out" / "damaged.parquet")
    recover(root, "damaged file (left alone, reported)", bad.status == "failed")
