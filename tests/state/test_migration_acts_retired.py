"""Migration 4 gives the acts table a `retired` count: a store written at version 3, with
acts recorded, is upgraded in place on both backends and its acts say they retired none."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from retainer.playbooks import ledger
from retainer.state import Store, open_store
from retainer.state.schema import CURRENT_VERSION

T1, T2 = datetime(2026, 10, 1), datetime(2026, 11, 1)
ACTS = "SELECT act_id, status, planned, sent, deferred, error, retired FROM acts ORDER BY act_id"


def version_3_store(spec: str, root: Path) -> None:
    """A store as version 3 wrote it, with two finished acts and one killed."""
    store = open_store(spec, root)
    try:
        tables = store.backend.fetch("SELECT table_name FROM information_schema.tables "
                                     "WHERE table_schema = current_schema()")
        for (table,) in tables:
            store.backend.execute(f"DROP TABLE IF EXISTS {table}")
        store.migrate(target=3)
        assert store.version() == 3
        columns = "act_id, as_of, started_at, finished_at, status, playbooks, planned, sent, " \
            "recorded, suppressed, failed, held_out, stopped, deferred, error, rulebook_hash"
        for row in ([1, T1, T1, T1, "succeeded", "tips", 3, 2, 0, 1, 0, 0, 0, 0, None, "h1"],
                    [2, T2, T2, T2, "failed", "tips", 1, 0, 0, 0, 1, 0, 0, 2, "crm/x: down",
                     "h1"],
                    [3, T2, T2, None, "running", "tips", None, None, None, None, None, None,
                     None, None, None, "h2"]):
            store.backend.execute(f"INSERT INTO acts ({columns}) VALUES "
                                  f"({', '.join('?' for _ in row)})", row)
    finally:
        store.close()


def test_a_version_3_store_keeps_its_acts_each_retiring_none(spec: str, tmp_path: Path
                                                             ) -> None:
    version_3_store(spec, tmp_path)
    store = open_store(spec, tmp_path)
    try:
        assert store.version() == CURRENT_VERSION == 4
        assert [tuple(r) for r in store.backend.fetch(ACTS)] == [
            (1, "succeeded", 3, 2, 0, None, 0),
            (2, "failed", 1, 0, 2, "crm/x: down", 0),
            (3, "running", None, None, None, None, 0)]
        # The next act records what it retires; the killed one is closed as interrupted.
        act_id = ledger.begin_act(store, T2, None, T2, ["tips"], "h2")
        assert act_id == 4
        assert [tuple(r) for r in store.backend.fetch(
            "SELECT act_id, status, retired FROM acts WHERE act_id >= 3 ORDER BY act_id")] == [
            (3, "interrupted", 0), (4, "running", 0)]
        ledger.finish_act(store, act_id, "succeeded", {"planned": 2, "retired": 5}, T2)
        assert tuple(store.backend.fetch(ACTS)[-1]) == (4, "succeeded", 2, 0, 0, None, 5)
    finally:
        store.close()
    assert applied(spec, tmp_path) == [1, 2, 3, 4]


def applied(spec: str, root: Path) -> list[int]:
    """The migrations the store records, after one more open: each applied once."""
    store: Store = open_store(spec, root)
    try:
        return sorted(int(r[0]) for r in store.backend.fetch(
            "SELECT version FROM retainer_schema"))
    finally:
        store.close()
