"""Webhook faults: down at the start, failing mid-sync, answering 500, timing out, refusing
one record, dropping connections. After the next successful sync the receiver holds exactly
the published results (upserts and deletes honoured), and the store agrees."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from retainer.project import Project
from retainer.sync.apply import SyncResult
from tests.conftest import ProjectWriter
from tests.sync.faults import CASES, FaultCase, expected, store_settled, sync_once
from tests.sync.project import DAY, make_project, rerun
from tests.sync.receiver import Receiver, free_port, running

COUNT = 24   # six batches of four


def project(write_project: ProjectWriter, url: str, timeout: float = 2) -> Path:
    root = make_project(write_project, f"""
    destinations:
      hook: {{type: webhook, url: "{url}", retries: 1, backoff: 0.01, batch: 4,
              timeout: {timeout}}}
    syncs:
      accounts: {{to: hook, mode: mirror, columns: [name, activity, vip]}}
    """, count=COUNT)
    Project(root).run(DAY)
    return root


def held(server: Receiver) -> dict[str, object]:
    return {key: record["payload"] for key, record in server.state.items()}


def recover(root: Path, server: Receiver, fault: str, bad: SyncResult,
            fix: Callable[[], None]) -> SyncResult:
    fix()
    [good] = sync_once(root)
    exact = good.status == "succeeded" and held(server) == expected(root, "accounts")
    settled = store_settled(root, "accounts")
    CASES.append(FaultCase("webhook", fault, bad.status == "failed", exact and settled))
    assert exact, (good.error, sorted(held(server)), sorted(expected(root, "accounts")))
    assert settled
    return good


def test_down_at_the_start(write_project: ProjectWriter) -> None:
    port = free_port()
    root = project(write_project, f"http://127.0.0.1:{port}/hook")
    [bad] = sync_once(root)
    assert (bad.status, bad.failed, bad.pending, bad.upserted) == ("failed", 4, 20, 0)
    assert "cannot reach" in (bad.error or "") and bad.attempts == 2
    with running(port=port) as server:
        good = recover(root, server, "down at the start (connection refused)", bad,
                       lambda: None)
    assert good.upserted == COUNT and good.plan.retrying == 4


def test_failing_mid_sync_then_later_batches_wait(write_project: ProjectWriter) -> None:
    with running(Receiver(fail_after=2)) as server:
        root = project(write_project, server.url)
        [bad] = sync_once(root)
        assert (bad.upserted, bad.failed, bad.pending) == (8, 4, 12)
        assert len(server.stored) == 2
        good = recover(root, server, "fails mid-sync (500 after 2 batches)", bad,
                       lambda: setattr(server, "fail_after", None))
    assert good.upserted == 16                 # only what the first sync did not deliver


def test_answering_500_to_everything(write_project: ProjectWriter) -> None:
    with running(Receiver(fail_after=0)) as server:
        root = project(write_project, server.url)
        [bad] = sync_once(root)
        assert bad.status == "failed" and "answered 500" in (bad.error or "")
        again = sync_once(root)[0]               # still failing: attempts add up
        assert again.status == "failed"
        from retainer.sync import state
        with Project(root).store() as store:
            assert {d.attempts for d in state.dead_letters(store, "accounts")} == {4}
        recover(root, server, "answers 500 to every request", bad,
                lambda: setattr(server, "fail_after", None))


def test_timing_out_while_the_server_still_applies(write_project: ProjectWriter) -> None:
    # The server takes longer than the timeout but applies the records anyway: the client
    # gives up, and the next sync sends them again — harmless, they are upserts by key.
    with running(Receiver(script=["sleep:0.6", "sleep:0.6"])) as server:
        root = project(write_project, server.url, timeout=0.2)
        [bad] = sync_once(root)
        assert bad.status == "failed" and "no answer within 0.2s" in (bad.error or "")
        recover(root, server, "times out (server slower than the timeout)", bad,
                lambda: __import__("time").sleep(0.8))


def test_one_refused_record_does_not_hold_back_the_others(
        write_project: ProjectWriter) -> None:
    with running(Receiver(reject={"a07"})) as server:
        root = project(write_project, server.url)
        [bad] = sync_once(root)
        assert (bad.status, bad.upserted, bad.failed, bad.pending) == ("failed", 23, 1, 0)
        assert "answered 422" in (bad.error or "")
        assert "a07" not in server.state and len(server.state) == 23
        recover(root, server, "refuses one record (422), the rest delivered", bad,
                lambda: server.reject.clear())


def test_dropped_connections_are_retried_within_the_sync(
        write_project: ProjectWriter) -> None:
    with running(Receiver(script=[200, "drop", 200, 503])) as server:
        root = project(write_project, server.url)
        [result] = sync_once(root)
        exact = result.status == "succeeded" and held(server) == expected(root, "accounts")
        CASES.append(FaultCase("webhook", "drops a connection, then 503, mid-sync", False,
                               exact and store_settled(root, "accounts")))
        assert exact


def test_deletes_and_changes_survive_a_failing_mirror_sync(
        write_project: ProjectWriter) -> None:
    with running() as server:
        root = project(write_project, server.url)
        assert sync_once(root)[0].status == "succeeded"
        # Four accounts leave, eight change segment; the receiver fails after two batches.
        rerun(root, COUNT, {f"a{i:02d}": 4 for i in range(1, 9)},
              DAY + timedelta(days=1), gone=("a21", "a22", "a23", "a24"))
        server.fail_after = len(server.stored) + 2
        [bad] = sync_once(root)
        assert bad.status == "failed" and bad.deleted == 4 and bad.upserted == 4
        good = recover(root, server, "fails mid-sync with deletes pending (mirror)", bad,
                       lambda: setattr(server, "fail_after", None))
    assert (good.deleted, good.upserted) == (0, 4)
    assert sorted(server.state)[-1] == "a20"
