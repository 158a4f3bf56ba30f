"""Syncs end to end on small projects: only what changed, mirror, changes, where, the log."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from retainer.destinations.files import FilesDestination
from retainer.errors import RetainerError, ValidationError
from retainer.project import Project
from retainer.sync import state
from retainer.sync.apply import SyncResult
from retainer.sync.plan import SyncPlan
from retainer.sync.runner import run_syncs
from tests.conftest import ProjectWriter
from tests.sync.project import DAY, make_project, rerun
from tests.sync.receiver import running


def hook_syncs(url: str, mode: str = "upsert", extra: str = "") -> str:
    return f"""
    destinations:
      hook: {{type: webhook, url: "{url}", retries: 1, backoff: 0.01, batch: 4}}
    syncs:
      accounts: {{to: hook, mode: {mode}{extra}}}
    """


def sync(root: Path, *names: str, full: bool = False) -> list[SyncResult]:
    results = run_syncs(Project(root), list(names) or None, full=full)
    assert all(isinstance(r, SyncResult) for r in results)
    return results  # type: ignore[return-value]


def file_state(root: Path, stream: str, fmt: str = "csv") -> dict[str, dict[str, object]]:
    return FilesDestination("x", root / "out", fmt).read(stream)  # type: ignore[arg-type]


def test_only_what_changed_is_sent(write_project: ProjectWriter) -> None:
    with running() as server:
        root = make_project(write_project, hook_syncs(server.url), count=6)
        Project(root).run(DAY)
        [first] = sync(root)
        assert (first.status, first.upserted, first.batches) == ("succeeded", 6, 2)
        assert server.records()[0]["payload"] == {
            "account_id": "a01", "activity": "quiet", "vip": False}
        [again] = sync(root)
        assert (again.upserted, again.plan.unchanged) == (0, 6)
        assert len(server.requests) == 2                # nothing new: no request at all
        rerun(root, 6, {"a04": 5})                      # a04 becomes busy
        [changed] = sync(root)
        assert changed.upserted == 1 and len(server.requests) == 3
        assert server.stored[-1].body["records"] == [{
            "key": "a04", "entity_id": "a04", "op": "upsert",
            "payload": {"account_id": "a04", "activity": "busy", "vip": False}}]
    assert sorted(server.state) == ["a01", "a02", "a03", "a04", "a05", "a06"]
    assert server.state["a03"]["payload"]["vip"] is True


FILES = """
destinations:
  out: {type: files, dir: out, format: csv}
syncs:
  mirrored: {to: out, mode: mirror, columns: [name, activity, logins_30d]}
  upserted: {to: out, mode: upsert, columns: [activity]}
  busy_only: {to: out, mode: mirror, where: "activity = 'busy' and not vip"}
"""


def test_mirror_deletes_entities_that_left_and_upsert_never_deletes(
        write_project: ProjectWriter) -> None:
    root = make_project(write_project, FILES, count=6, logins={"a01": 3, "a03": 4})
    Project(root).run(DAY)
    sync(root)
    assert sorted(file_state(root, "mirrored")) == ["a01", "a02", "a03", "a04", "a05", "a06"]
    assert file_state(root, "mirrored")["a01"] == {
        "key": "a01", "entity_id": "a01", "account_id": "a01", "name": "Company a01",
        "activity": "busy", "logins_30d": "3"}
    assert sorted(file_state(root, "busy_only")) == ["a01"]      # a03 is busy but a VIP
    rerun(root, 6, {"a02": 3, "a03": 4}, DAY + timedelta(days=1), gone=("a05",))
    results = {r.plan.name: r for r in sync(root)}
    # a05 left; a01 went quiet and a02 busy
    assert (results["mirrored"].deleted, results["mirrored"].upserted) == (1, 2)
    assert sorted(file_state(root, "mirrored")) == ["a01", "a02", "a03", "a04", "a06"]
    assert sorted(file_state(root, "upserted")) == ["a01", "a02", "a03", "a04", "a05", "a06"]
    assert (results["upserted"].deleted, results["upserted"].upserted) == (0, 2)
    # a01 stopped being busy (left `where`), a02 became busy
    assert (results["busy_only"].deleted, results["busy_only"].upserted) == (1, 1)
    assert sorted(file_state(root, "busy_only")) == ["a02"]
    with Project(root).store() as store:
        log = state.log(store)
    assert [(e.sync, e.status, e.upserted, e.deleted) for e in log[:3]] == [
        ("busy_only", "succeeded", 1, 1), ("upserted", "succeeded", 2, 0),
        ("mirrored", "succeeded", 2, 1)]


def test_full_sends_everything_again_and_repairs_a_lost_file(
        write_project: ProjectWriter) -> None:
    root = make_project(write_project, FILES, count=4)
    Project(root).run(DAY)
    sync(root)
    (root / "out" / "mirrored.csv").unlink()            # someone deleted the file
    assert sync(root, "mirrored")[0].upserted == 0       # the store still believes it is there
    [full] = sync(root, "mirrored", full=True)
    assert full.upserted == 4
    assert sorted(file_state(root, "mirrored")) == ["a01", "a02", "a03", "a04"]


def test_full_mirror_still_deletes_what_left(write_project: ProjectWriter) -> None:
    root = make_project(write_project, FILES, count=4)
    Project(root).run(DAY)
    sync(root, "mirrored")
    rerun(root, 4, day=DAY + timedelta(days=1), gone=("a02",))
    [full] = sync(root, "mirrored", full=True)
    assert (full.upserted, full.deleted) == (3, 1)
    assert sorted(file_state(root, "mirrored")) == ["a01", "a03", "a04"]


CHANGES = """
destinations:
  out: {type: files, dir: out, format: csv}
syncs:
  moves: {to: out, mode: changes, columns: [activity, vip]}
"""


def test_changes_sends_one_message_per_change_once(write_project: ProjectWriter) -> None:
    root = make_project(write_project, CHANGES, count=3)
    Project(root).run(DAY)
    [first] = sync(root)
    # The first sync starts at the latest run: everyone entered a segment, a03 got the tag.
    assert first.messages == 4
    messages = file_state(root, "moves")
    assert sorted(m["dimension"] + ":" + str(m["to"]) for m in messages.values()) == [
        "activity:quiet", "activity:quiet", "activity:quiet", "vip:true"]
    rerun(root, 3, {"a02": 3}, DAY + timedelta(days=1))
    [second] = sync(root)
    assert second.messages == 1
    key = "a02:activity:2026-12-02T00:00:00:quiet>busy"
    message = file_state(root, "moves")[key]
    assert (message["from"], message["to"], message["change"]) == ("quiet", "busy", "moved")
    assert json.loads(str(message["reason"]))["values"] == {"logins_30d": 3}
    assert sync(root)[0].messages == 0
    rerun(root, 3, {"a02": 3}, DAY + timedelta(days=1))  # the same as_of again
    assert sync(root)[0].messages == 0                    # nothing is sent twice
    rerun(root, 3, {}, DAY + timedelta(days=2))           # a02 quiet again
    [third] = sync(root)
    assert third.messages == 1
    assert "a02:activity:2026-12-03T00:00:00:busy>quiet" in file_state(root, "moves")


def test_dry_run_plans_without_sending_or_recording(write_project: ProjectWriter) -> None:
    root = make_project(write_project, FILES, count=3)
    Project(root).run(DAY)
    plans = run_syncs(Project(root), ["mirrored"], dry_run=True)
    assert all(isinstance(p, SyncPlan) for p in plans)
    plan = plans[0]
    assert isinstance(plan, SyncPlan)
    assert [r.key for r in plan.upserts] == ["a01", "a02", "a03"]
    assert plan.differences(plan.upserts[0])[1] == ("name", None, "Company a01")
    assert not (root / "out").exists()
    with Project(root).store() as store:
        assert state.log(store) == [] and state.known_state(store, "mirrored") == {}


def test_sync_needs_a_run_and_a_valid_rulebook(write_project: ProjectWriter) -> None:
    root = make_project(write_project, FILES, count=2)
    with pytest.raises(RetainerError, match="no results yet"):
        sync(root)
    with pytest.raises(RetainerError, match="no sync named 'mirored'") as raised:
        sync(root, "mirored")
    assert "did you mean 'mirrored'" in str(raised.value)
    (root / "rulebook" / "syncs.yml").write_text(FILES.replace("logins_30d]", "logins_31d]"))
    with pytest.raises(ValidationError, match="'logins_31d' is not a column"):
        sync(root)


def test_a_sync_reports_a_destination_it_cannot_open(write_project: ProjectWriter,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SYNC_TEST_SECRET", raising=False)
    root = make_project(write_project, hook_syncs("http://127.0.0.1:9/x").replace(
        "batch: 4}", "batch: 4, secret_env: SYNC_TEST_SECRET}"), count=2)
    Project(root).run(DAY)
    [result] = sync(root)
    assert result.status == "failed" and result.pending == 2
    assert "SYNC_TEST_SECRET, which is not set" in (result.error or "")
    with Project(root).store() as store:
        [entry] = state.log(store)
        assert entry.status == "failed" and entry.pending == 2
        assert state.known_state(store, "accounts") == {}


def test_where_is_checked_against_the_published_types(write_project: ProjectWriter) -> None:
    root = make_project(write_project, """
    destinations:
      out: {type: files, dir: out}
    syncs:
      many: {to: out, where: "logins_30d > 'many'"}
    """, count=2)
    Project(root).run(DAY)
    with pytest.raises(RetainerError, match="compares a number with a text") as raised:
        sync(root)
    location = raised.value.problem.location
    assert location is not None and (location.file.name, location.line) == ("syncs.yml", 4)
