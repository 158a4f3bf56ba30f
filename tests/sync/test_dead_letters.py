"""The dead-letter store is read once per sync (the plan keeps its keys and attempts), and
dead letters leave it many keys to a statement. The statements are counted on the store's
own DuckDB backend, which keeps the text of each one it runs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from retainer.destinations.base import Record
from retainer.project import Project, utc_now
from retainer.state import Store
from retainer.state.backend import Statement
from retainer.state.duckdb_backend import DuckDBBackend
from retainer.sync import state
from retainer.sync.apply import SyncResult, apply_sync
from retainer.sync.plan import plan_sync
from retainer.sync.records import published
from tests.conftest import ProjectWriter
from tests.sync.project import DAY, account_ids, make_project, rerun
from tests.sync.receiver import Receiver, running


class Recording(DuckDBBackend):
    """The DuckDB backend, keeping the text of every statement it runs."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.statements: list[str] = []

    def execute(self, statement: Statement, parameters: Sequence[Any] = ()) -> None:
        self.statements.append(self.render(statement))
        super().execute(statement, parameters)

    def fetch(self, statement: Statement, parameters: Sequence[Any] = ()
              ) -> list[tuple[Any, ...]]:
        self.statements.append(self.render(statement))
        return super().fetch(statement, parameters)


def recorded(root: Path) -> tuple[Store, Recording]:
    backend = Recording(root / ".retainer" / "state.duckdb")
    store = Store(backend)
    backend.statements.clear()
    return store, backend


def sync_recorded(root: Path) -> tuple[SyncResult, list[str]]:
    """Plan and apply sync 'accounts' as `retainer sync` does; the statements it ran."""
    project = Project(root)
    store, backend = recorded(root)
    results = project.results()
    try:
        plan = plan_sync(project.rulebook, store, results, published(results), "accounts")
        result = apply_sync(plan, project.rulebook, store, utc_now)
    finally:
        results.close()
        store.close()
    return result, backend.statements


def on_dead_letters(statements: list[str], verb: str) -> list[str]:
    return [s for s in statements if s.startswith(verb) and "dead_letters" in s]


def test_dead_letters_are_read_once_and_dropped_in_one_statement(
        write_project: ProjectWriter) -> None:
    every = account_ids(30)
    with running(Receiver(reject=set(every))) as server:
        root = make_project(write_project, f"""
        destinations:
          hook: {{type: webhook, url: "{server.url}", retries: 0}}
        syncs:
          accounts: {{to: hook, mode: mirror}}
        """, count=30)
        Project(root).run(DAY)
        first, statements = sync_recorded(root)
        # Each refused record is found by splitting its batch, and dead-lettered alone.
        assert (first.status, first.failed) == ("failed", 30)
        assert len(on_dead_letters(statements, "SELECT")) == 1

        # 25 accounts leave: their dead letters are moot; the other 5 are refused again.
        rerun(root, 30, day=DAY + timedelta(days=1), gone=tuple(every[5:]))
        server.reject = set(every[:5])
        second, statements = sync_recorded(root)
        assert (second.failed, second.plan.retrying) == (5, 5)
        assert len(on_dead_letters(statements, "SELECT")) == 1
        [dropped] = [s for s in on_dead_letters(statements, "DELETE")
                     if "sync_failed" not in s]
        assert dropped.count("?") == 1 + 25
        with Project(root).store() as store:
            assert {d.record_key: d.attempts for d in state.dead_letters(store)} == \
                dict.fromkeys(every[:5], 2)

        server.reject.clear()
        third, _ = sync_recorded(root)
        assert (third.status, third.upserted, third.plan.retrying) == ("succeeded", 5, 5)
    with Project(root).store() as store:
        assert state.dead_letters(store) == []


def test_forgetting_names_many_keys_in_a_statement(write_project: ProjectWriter) -> None:
    root = make_project(write_project, """
    destinations:
      out: {type: files, dir: out, format: csv}
    syncs:
      people: {to: out, entity: contact}
    """)
    keys = [f"c{n:05d}" for n in range(2005)]
    records = [Record(key, key, {"contact_id": key}) for key in keys]
    store, backend = recorded(root)
    try:
        state.confirm(store, "people", records, dict.fromkeys(keys, "h"), {}, utc_now())
        backend.statements.clear()
        state.forget(store, "people", keys[1:])
        assert list(state.known_state(store, "people")) == keys[:1]
    finally:
        store.close()
    deletes = [s for s in backend.statements if s.startswith("DELETE")]
    assert len(deletes) == 2 * 3           # per table: 1,000 + 1,000 + 4 keys
