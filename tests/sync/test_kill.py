"""`retainer sync` killed with SIGKILL mid-way (a real process), after the destination
confirmed its first batch: the next sync leaves the destination exactly as expected.

What the killed process had delivered but not yet recorded is sent again: an upsert of the
same row (webhook, PostgreSQL), or a message with the same id (RabbitMQ), which consumers
drop — the tests count those raw duplicates. A `changes` sync killed at its very end, as it
logs its success, leaves nothing to resend and no false word about history."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import psycopg
from typer.testing import CliRunner

from retainer.cli.main import app
from retainer.project import Project
from retainer.state.postgres_backend import split_schema
from retainer.sync import state
from retainer.sync.plan import SyncPlan
from retainer.sync.runner import run_syncs
from tests.conftest import ProjectWriter
from tests.sync.faults import CASES, FaultCase, expected, store_settled, sync_once
from tests.sync.project import DAY, PROJECT, SEGMENTS, data, make_project, rerun
from tests.sync.receiver import Receiver, running
from tests.sync.servers import proxy, rabbit_queue
from tests.sync.test_faults_postgres import held as table_rows
from tests.sync.test_faults_rabbitmq import expected_ids

RETAINER = str(Path(sys.executable).parent / "retainer")
COUNT = 24


def kill_when(root: Path, ready: Callable[[], bool], limit: float = 60) -> None:
    """Start `retainer sync`, SIGKILL it as soon as `ready()` holds."""
    process = subprocess.Popen([RETAINER, "sync", "-p", str(root)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env={**os.environ, "COLUMNS": "120"})
    deadline = time.monotonic() + limit
    try:
        while not ready():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the sync never got there"
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(30)
    assert process.returncode == -signal.SIGKILL


def interrupted(root: Path) -> bool:
    """The killed sync is in the log as interrupted (the next sync marked it)."""
    with Project(root).store() as store:
        return any(e.status == "interrupted" for e in state.log(store))


def test_killed_webhook_sync(write_project: ProjectWriter) -> None:
    with running(Receiver(delay=0.3)) as server:
        root = make_project(write_project, f"""
        destinations:
          hook: {{type: webhook, url: "{server.url}", batch: 4, retries: 1, backoff: 0.01}}
        syncs:
          accounts: {{to: hook, mode: mirror}}
        """, count=COUNT)
        Project(root).run(DAY)
        kill_when(root, lambda: len(server.stored) >= 1)
        confirmed = len(server.stored)
        assert 1 <= confirmed < COUNT // 4
        [good] = sync_once(root)
        state_now = {k: r["payload"] for k, r in server.state.items()}
        exact = good.status == "succeeded" and state_now == expected(root, "accounts")
        received = Counter(r["key"] for r in server.records())
    duplicates = sum(n - 1 for n in received.values())
    settled = store_settled(root, "accounts")
    CASES.append(FaultCase("webhook", "SIGKILL after the first confirmed batch", True,
                           exact and settled, duplicates, killed=True))
    assert exact and settled
    assert duplicates <= 4                      # at most the batch in flight
    assert interrupted(root)


def test_killed_postgres_sync(write_project: ProjectWriter, postgres_url: str) -> None:
    root = make_project(write_project, f"""
    destinations:
      crm: {{type: postgres, url: "{postgres_url}", batch: 4, timeout: 30}}
    syncs:
      accounts: {{to: crm, mode: mirror, table: account_segments}}
    """, count=COUNT)
    Project(root).run(DAY)
    assert sync_once(root)[0].status == "succeeded"
    rerun(root, COUNT, {f"a{i:02d}": 4 for i in range(1, COUNT + 1)}, DAY + timedelta(days=1))
    dsn, schema = split_schema(postgres_url)
    locker = psycopg.connect(dsn)       # a row of the second batch is locked: it waits there
    try:
        locker.execute(f"SELECT * FROM \"{schema}\".account_segments WHERE key = 'a05' "
                       "FOR UPDATE")

        def waiting_on_lock() -> bool:
            with psycopg.connect(dsn, autocommit=True) as admin:
                row = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE "
                                    "application_name = 'retainer-sync' AND "
                                    "wait_event_type = 'Lock'").fetchone()
            return bool(row and row[0])

        kill_when(root, waiting_on_lock)
        busy = [k for k, p in table_rows(postgres_url).items() if p["activity"] == "busy"]
        assert sorted(busy) == ["a01", "a02", "a03", "a04"]   # the first batch committed
    finally:
        locker.rollback()
        locker.close()
    [good] = sync_once(root)
    exact = good.status == "succeeded" and table_rows(postgres_url) == expected(root,
                                                                               "accounts")
    settled = store_settled(root, "accounts")
    CASES.append(FaultCase("postgres", "SIGKILL while waiting on a lock, after batch 1",
                           True, exact and settled, killed=True))
    assert exact and settled
    assert interrupted(root)
    assert good.upserted in (COUNT - 4, COUNT)  # batch 1 again only if not yet recorded


def test_killed_rabbitmq_changes_sync(write_project: ProjectWriter) -> None:
    with rabbit_queue("segment.#") as queue, proxy(("127.0.0.1", 5672)) as link:
        root = make_project(write_project, f"""
        destinations:
          bus: {{type: rabbitmq, url: "amqp://guest:guest@127.0.0.1:{link.port}/%2F",
                 exchange: {queue.exchange}, batch: 4}}
        syncs:
          moves: {{to: bus, mode: changes, table: segment.changes}}
        """, count=COUNT)
        Project(root).run(DAY)
        link.delay = 0.05                    # every round trip is slow

        def first_batch_confirmed() -> bool:
            declared = queue.channel.queue_declare(queue.name, passive=True)
            return int(declared.method.message_count) >= 4

        kill_when(root, first_batch_confirmed)
        link.delay = 0.0
        [good] = sync_once(root, names=["moves"])
        received = Counter(str(body["key"]) for _, body in queue.messages())
    wanted = expected_ids(root)
    exact = good.status == "succeeded" and set(received) == wanted
    duplicates = sum(n - 1 for n in received.values())
    CASES.append(FaultCase("rabbitmq", "SIGKILL after the first confirmed batch", True,
                           exact, duplicates, killed=True))
    assert exact
    assert duplicates <= 4
    assert interrupted(root)


def test_killed_as_it_logs_its_success(write_project: ProjectWriter, postgres_url: str
                                       ) -> None:
    """Killed after the receiver took its message, while writing that it succeeded (the
    store's row of the log is locked): the next sync sends nothing again and says nothing
    of a rebuilt history — the run recorded between the two syncs is an ordinary one."""
    with running(Receiver()) as server:
        root = write_project(
            PROJECT.replace("name: synctest\n", f"name: synctest\nstate: '{postgres_url}'\n"),
            {"segments.yml": SEGMENTS, "syncs.yml": textwrap.dedent(f"""
            destinations:
              hook: {{type: webhook, url: "{server.url}", retries: 0}}
            syncs:
              moves: {{to: hook, mode: changes, columns: [activity]}}
            """)}, data(3))
        Project(root).run(DAY)
        assert sync_once(root)[0].messages == 3
        rerun(root, 3, day=DAY + timedelta(days=1))               # nothing changes
        rerun(root, 3, {"a01": 3}, DAY + timedelta(days=2))       # a01 turns busy
        server.script, before = ["wait"], len(server.requests)
        dsn, schema = split_schema(postgres_url)
        locker = psycopg.connect(dsn)
        admin = psycopg.connect(dsn, autocommit=True)
        blocked = ("SELECT pid FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
                   [locker.info.backend_pid])
        held: list[tuple[int]] = []
        try:
            def logging_its_success() -> bool:
                if not held and len(server.requests) > before:
                    # The message waits at the receiver: hold the sync's entry in the log,
                    # then let the receiver take the message.
                    held.extend(locker.execute(f'SELECT sync_id FROM "{schema}".sync_log '
                                               "WHERE status = 'running' FOR UPDATE"))
                    assert len(held) == 1
                    server.release()
                return bool(admin.execute(*blocked).fetchall())

            kill_when(root, logging_its_success)
            # Its session still waits in the server: end it, as the server would on
            # noticing its client gone, so the statement it waits to run never runs.
            pids = [pid for pid, in admin.execute(*blocked).fetchall()]
            admin.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) pid",
                          [pids])
            locker.rollback()
            while admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = ANY(%s)",
                                [pids]).fetchall():
                time.sleep(0.01)
        finally:
            locker.close()
            admin.close()
        busy = "a01:activity:2026-12-03T00:00:00:quiet>busy"
        assert [r["key"] for r in server.stored[-1].body["records"]] == [busy]

        [plan] = run_syncs(Project(root), dry_run=True)
        assert isinstance(plan, SyncPlan)
        assert (plan.rebuilt_from, plan.note, plan.messages) == (None, None, ())
        done = CliRunner().invoke(app, ["sync", "-p", str(root)], env={"COLUMNS": "200"})
        assert done.exit_code == 0, done.output
        assert "rebuilt" not in done.output
        sent = Counter(r["key"] for r in server.records())
    assert busy in sent and set(sent.values()) == {1}
    assert interrupted(root)
