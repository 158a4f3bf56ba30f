"""A `changes` sync after `backfill --replace` rebuilt history from before its cursor: the
changes the rebuilt history holds there and the destination never got are sent, once; the
ones it got are not sent again."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from retainer.cli.main import app
from retainer.destinations.rabbitmq import message_id
from retainer.project import Project
from retainer.sync.apply import SyncResult
from retainer.sync.plan import SyncPlan
from retainer.sync.runner import run_syncs
from tests.conftest import ProjectWriter
from tests.sync.project import PROJECT, SEGMENTS
from tests.sync.servers import RABBITMQ, rabbit_queue
from tests.sync.test_sync import file_state

# a01 logs in 3 times on 11-06 (busy), a02 once on 11-15 (quiet); a03 never (idle, a VIP).
DATA = {
    "accounts.csv": "account_id,name,created_at\n"
                    "a01,Company a01,2026-01-01\na02,Company a02,2026-01-01\n"
                    "a03,VIP Company a03,2026-01-01\n",
    "contacts.csv": "contact_id,account_id,role\na01-c1,a01,practitioner\n",
    "events.csv": "account_id,user_id,ts,name,feature\n"
                  "a01,a01-c1,2026-11-06 09:00:00,login,\na01,a01-c1,2026-11-06 10:00:00,login,\n"
                  "a01,a01-c1,2026-11-06 11:00:00,login,\na02,,2026-11-15 09:00:00,login,\n",
}
FILES = """
destinations:
  out: {type: files, dir: out, format: csv}
syncs:
  moves: {to: out, mode: changes, columns: [activity, vip]}
"""
WEEKLY = [datetime(2026, 11, 3) + timedelta(days=7 * n) for n in range(4)]   # … 11-24
REBUILD = (datetime(2026, 11, 3), datetime(2026, 11, 28), timedelta(days=5))  # … 11-28


def sync(root: Path) -> SyncResult:
    [result] = run_syncs(Project(root))
    assert isinstance(result, SyncResult) and result.status == "succeeded", result
    return result


def weekly_then_rebuilt(write_project: ProjectWriter, syncs: str, first: int = 0,
                        state: str | None = None) -> tuple[Path, list[SyncResult]]:
    """Weekly runs from 11-03, a sync after each from run `first` on; then history rebuilt
    every 5 days from 11-03: a01 turns busy on 11-08 (was 11-10), a02 quiet on 11-18 (was
    11-17). `state` is the store's URL (default: the DuckDB file)."""
    project = PROJECT if state is None else PROJECT.replace(
        "name: synctest\n", f"name: synctest\nstate: \"{state}\"\n")
    root = write_project(project, {"segments.yml": SEGMENTS, "syncs.yml": syncs}, DATA)
    results = []
    for index, day in enumerate(WEEKLY):
        Project(root).run(day)
        if index >= first:
            results.append(sync(root))
    Project(root).backfill(*REBUILD, replace_history=True)
    return root, results


@pytest.mark.parametrize("store", ["duckdb", "postgres"])
def test_changes_rebuilt_before_the_cursor_are_sent(write_project: ProjectWriter,
                                                    request: pytest.FixtureRequest,
                                                    store: str) -> None:
    url = request.getfixturevalue("postgres_url") if store == "postgres" else None
    root, before = weekly_then_rebuilt(write_project, FILES, state=url)
    assert (root / ".retainer" / "state.duckdb").exists() == (url is None)
    assert [r.messages for r in before] == [4, 1, 1, 0]
    assert all(r.plan.rebuilt_from is None for r in before)
    sent = file_state(root, "moves")
    assert sorted(sent) == [
        "a01:activity:2026-11-03T00:00:00:>idle", "a01:activity:2026-11-10T00:00:00:idle>busy",
        "a02:activity:2026-11-03T00:00:00:>idle", "a02:activity:2026-11-17T00:00:00:idle>quiet",
        "a03:activity:2026-11-03T00:00:00:>idle", "a03:tag:vip:2026-11-03T00:00:00:>yes"]

    [plan] = run_syncs(Project(root), dry_run=True)
    assert isinstance(plan, SyncPlan)
    assert [r.key for r in plan.messages] == [
        "a01:activity:2026-11-08T00:00:00:idle>busy",
        "a02:activity:2026-11-18T00:00:00:idle>quiet"]
    assert plan.rebuilt_from == datetime(2026, 11, 3)
    assert plan.note == ("history was rebuilt from 2026-11-03: resending the changes from "
                         "there that were not sent before")
    shown = CliRunner().invoke(app, ["sync", "--dry-run", "-p", str(root)],
                               env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert f"note: {plan.note}" in shown.output
    after = sync(root)
    # The baseline's four changes are the same in the rebuilt history: not sent again.
    assert (after.messages, after.plan.unchanged) == (2, 4)
    assert after.plan.messages == plan.messages
    now = file_state(root, "moves")
    assert sorted(now) == sorted([*sent, *(r.key for r in after.plan.messages)])
    moved = now["a01:activity:2026-11-08T00:00:00:idle>busy"]
    assert (moved["from"], moved["to"], moved["change"], moved["as_of"]) == (
        "idle", "busy", "moved", "2026-11-08 00:00:00")
    # Delivered: the next sync is an ordinary one again.
    again = sync(root)
    assert (again.messages, again.plan.rebuilt_from) == (0, None)


def test_a_sync_started_later_reaches_back_only_to_its_first_change(
        write_project: ProjectWriter) -> None:
    """A sync first run on 11-17 sent a02's move then; history rebuilt from 11-03 does not
    make it send what came before that (a01's move, the baseline)."""
    root, before = weekly_then_rebuilt(write_project, FILES, first=2)
    assert [r.messages for r in before] == [1, 0]
    after = sync(root)
    assert [r.key for r in after.plan.messages] == [
        "a02:activity:2026-11-18T00:00:00:idle>quiet"]
    assert after.plan.rebuilt_from == datetime(2026, 11, 17)


def test_rabbitmq_receives_only_the_rebuilt_changes(write_project: ProjectWriter) -> None:
    with rabbit_queue("moves") as queue:
        bus = f"""
        destinations:
          bus: {{type: rabbitmq, url: "{RABBITMQ}", exchange: {queue.exchange}}}
        syncs:
          moves: {{to: bus, mode: changes, table: moves, columns: [activity]}}
        """
        root, _ = weekly_then_rebuilt(write_project, bus)
        first = queue.messages()
        assert [body["key"] for _, body in first] == [
            "a01:activity:2026-11-03T00:00:00:>idle", "a02:activity:2026-11-03T00:00:00:>idle",
            "a03:activity:2026-11-03T00:00:00:>idle",
            "a01:activity:2026-11-10T00:00:00:idle>busy",
            "a02:activity:2026-11-17T00:00:00:idle>quiet"]
        after = sync(root)
        found = queue.messages()
    assert [(body["key"], body["payload"]["from"], body["payload"]["to"],
             body["payload"]["as_of"]) for _, body in found] == [
        ("a01:activity:2026-11-08T00:00:00:idle>busy", "idle", "busy", "2026-11-08 00:00:00"),
        ("a02:activity:2026-11-18T00:00:00:idle>quiet", "idle", "quiet",
         "2026-11-18 00:00:00")]
    assert [p.message_id for p, _ in found] == [message_id(r) for r in after.plan.messages]
    assert not {p.message_id for p, _ in found} & {p.message_id for p, _ in first}
