"""Syncs with the state store in PostgreSQL (production): the same bookkeeping, rendered for
PostgreSQL — known state, dead letters, the cursor of a changes sync and the log."""

from __future__ import annotations

from datetime import timedelta

from retainer.destinations.files import FilesDestination
from retainer.project import Project
from retainer.sync import state
from tests.conftest import ProjectWriter
from tests.sync.faults import sync_once
from tests.sync.project import DAY, PROJECT, SEGMENTS, data, rerun
from tests.sync.receiver import Receiver, running

SYNCS = """
destinations:
  out: {{type: files, dir: out, format: csv}}
  hook: {{type: webhook, url: "{url}", retries: 0, batch: 2}}
syncs:
  mirrored: {{to: out, mode: mirror}}
  moves: {{to: out, mode: changes}}
  pushed: {{to: hook}}
"""


def test_syncs_with_a_postgres_store(write_project: ProjectWriter, postgres_url: str) -> None:
    with running(Receiver(fail_after=1)) as server:
        root = write_project(PROJECT + f"state: {postgres_url}\n",
                             {"segments.yml": SEGMENTS, "syncs.yml": SYNCS.format(url=server.url)},
                             data(4))
        Project(root).run(DAY)
        first = {r.plan.name: r for r in sync_once(root)}
        assert first["mirrored"].upserted == 4 and first["moves"].messages == 5
        assert (first["pushed"].status, first["pushed"].upserted, first["pushed"].failed) == (
            "failed", 2, 2)
        server.fail_after = None
        rerun(root, 4, {"a01": 3}, DAY + timedelta(days=1), gone=("a04",))
        second = {r.plan.name: r for r in sync_once(root)}
    assert (second["mirrored"].upserted, second["mirrored"].deleted) == (1, 1)
    assert second["moves"].messages == 2          # a01 moved, a04 left
    # a03 failed before and is sent again; a04 failed too but left, so its letter is moot
    assert second["pushed"].status == "succeeded" and second["pushed"].plan.retrying == 1
    assert sorted(FilesDestination("out", root / "out", "csv").read("mirrored")) == [
        "a01", "a02", "a03"]
    assert sorted(server.state) == ["a01", "a02", "a03"]
    with Project(root).store() as store:
        assert state.dead_letters(store) == []
        assert state.cursor(store, "moves") == DAY + timedelta(days=1)
        assert [e.status for e in state.log(store)].count("succeeded") == 5
