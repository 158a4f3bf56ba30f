"""PostgreSQL faults: down at the start, connections killed mid-sync (once, and for good),
a lock that outlasts the timeout, a table changed by hand. After the next successful sync
the table holds exactly the published results, and the store agrees."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg

from retainer.project import Project
from retainer.state.postgres_backend import split_schema
from retainer.sync.apply import SyncResult
from tests.conftest import ProjectWriter
from tests.sync.faults import CASES, FaultCase, expected, store_settled, sync_once
from tests.sync.project import DAY, make_project, rerun
from tests.sync.receiver import free_port
from tests.sync.servers import proxy

COUNT = 24


def project(write_project: ProjectWriter, url: str, timeout: float = 2) -> Path:
    root = make_project(write_project, f"""
    destinations:
      crm: {{type: postgres, url: "{url}", timeout: {timeout}, retries: 1, backoff: 0.05,
             batch: 4}}
    syncs:
      accounts: {{to: crm, mode: mirror, table: account_segments,
                  columns: [name, activity, vip, logins_30d]}}
    """, count=COUNT)
    Project(root).run(DAY)
    return root


def held(postgres_url: str) -> dict[str, Any]:
    dsn, schema = split_schema(postgres_url)
    with psycopg.connect(dsn) as connection:
        exists = connection.execute("SELECT to_regclass(%s)", [f'"{schema}".account_segments'])
        if exists.fetchone() == (None,):
            return {}
        rows = connection.execute(
            f'SELECT key, payload FROM "{schema}".account_segments').fetchall()
    return {key: payload for key, payload in rows}


def with_port(postgres_url: str, port: int) -> str:
    return postgres_url.replace("127.0.0.1:5432", f"127.0.0.1:{port}")


def recover(root: Path, postgres_url: str, fault: str, bad: SyncResult) -> SyncResult:
    [good] = sync_once(root)
    exact = good.status == "succeeded" and held(postgres_url) == expected(root, "accounts")
    settled = store_settled(root, "accounts")
    CASES.append(FaultCase("postgres", fault, bad.status == "failed", exact and settled))
    assert exact, good.error
    assert settled
    return good


def test_down_at_the_start(write_project: ProjectWriter, postgres_url: str) -> None:
    port = free_port()
    root = project(write_project, with_port(postgres_url, port))
    [bad] = sync_once(root)
    assert (bad.status, bad.failed, bad.pending) == ("failed", 4, 20)
    with proxy(("127.0.0.1", 5432), port=port):          # the server comes up
        good = recover(root, postgres_url, "down at the start (connection refused)", bad)
    assert good.upserted == COUNT


def test_connection_killed_mid_sync_reconnects(write_project: ProjectWriter,
                                               postgres_url: str) -> None:
    root = project(write_project, postgres_url)
    dsn = split_schema(postgres_url)[0]

    killed: list[bool] = []

    def kill_between_batches(call: int) -> None:
        if call in (2, 4):
            with psycopg.connect(dsn, autocommit=True) as admin:
                killed.extend(row[0] for row in admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = 'retainer-sync'").fetchall())

    [result] = sync_once(root, kill_between_batches)
    assert killed == [True, True]
    exact = result.status == "succeeded" and held(postgres_url) == expected(root, "accounts")
    CASES.append(FaultCase("postgres", "connection killed twice mid-sync "
                           "(pg_terminate_backend)", False,
                           exact and store_settled(root, "accounts")))
    assert exact


def test_connection_lost_for_good_mid_sync(write_project: ProjectWriter,
                                           postgres_url: str) -> None:
    port = free_port()
    with proxy(("127.0.0.1", 5432), port=port) as link:
        root = project(write_project, with_port(postgres_url, port))

        def cut_after_two(call: int) -> None:
            if call == 2:
                link.refuse = True
                link.cut()

        [bad] = sync_once(root, cut_after_two)
        assert (bad.status, bad.upserted, bad.failed, bad.pending) == ("failed", 8, 4, 12)
        link.refuse = False
        recover(root, postgres_url, "connection lost for good mid-sync", bad)


def test_a_lock_outlasting_the_timeout(write_project: ProjectWriter,
                                       postgres_url: str) -> None:
    root = project(write_project, postgres_url, timeout=0.3)
    dsn, schema = split_schema(postgres_url)
    locker = psycopg.connect(dsn)
    try:
        def lock_before_third(call: int) -> None:
            if call == 2:
                locker.execute(f'LOCK TABLE "{schema}".account_segments IN ACCESS EXCLUSIVE '
                               'MODE')

        [bad] = sync_once(root, lock_before_third)
        assert (bad.status, bad.upserted, bad.failed) == ("failed", 8, 4)
        assert "lock timeout" in (bad.error or "")
    finally:
        locker.rollback()
        locker.close()
    recover(root, postgres_url, "times out on a lock held elsewhere", bad)


def test_a_table_changed_by_hand_refuses_rows(write_project: ProjectWriter,
                                              postgres_url: str) -> None:
    root = project(write_project, postgres_url)
    dsn, schema = split_schema(postgres_url)
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        admin.execute(f'CREATE TABLE "{schema}".account_segments (key TEXT PRIMARY KEY, '
                      "entity_id TEXT NOT NULL, payload JSONB NOT NULL, "
                      "synced_at TIMESTAMPTZ NOT NULL, activity NUMERIC)")
    [bad] = sync_once(root)
    assert (bad.status, bad.upserted, bad.failed) == ("failed", 0, COUNT)
    assert "refused the rows" in (bad.error or "")
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f'DROP TABLE "{schema}".account_segments')
    recover(root, postgres_url, "refuses every row (a column changed by hand)", bad)


def test_deletes_survive_a_failing_mirror_sync(write_project: ProjectWriter,
                                               postgres_url: str) -> None:
    root = project(write_project, postgres_url, timeout=0.3)
    assert sync_once(root)[0].status == "succeeded"
    rerun(root, COUNT, {f"a{i:02d}": 4 for i in range(1, 9)}, DAY + timedelta(days=1),
          gone=("a21", "a22", "a23", "a24"))
    dsn, schema = split_schema(postgres_url)
    locker = psycopg.connect(dsn)
    try:
        def lock_before_second(call: int) -> None:
            if call == 1:
                locker.execute(f'LOCK TABLE "{schema}".account_segments IN SHARE MODE')

        [bad] = sync_once(root, lock_before_second)
        assert (bad.status, bad.deleted, bad.upserted) == ("failed", 4, 0)
    finally:
        locker.rollback()
        locker.close()
    good = recover(root, postgres_url, "lock mid-sync with deletes pending (mirror)", bad)
    assert (good.deleted, good.upserted) == (0, 8)
