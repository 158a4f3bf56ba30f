"""The state store on both backends: migrations, runs, intervals, rewinds and queries."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pytest

from retainer.errors import RetainerError
from retainer.state import Store, open_store
from retainer.state.schema import CURRENT_VERSION

T1, T2, T3 = datetime(2026, 10, 1), datetime(2026, 11, 1), datetime(2026, 12, 1)


@pytest.fixture
def store(spec: str, tmp_path: Path) -> Iterator[Store]:
    opened = open_store(spec, tmp_path)
    yield opened
    opened.close()


def snapshot(rows: list[tuple[str, str, str]]) -> pa.Table:
    """Memberships of one run: (entity, dimension, segment)."""
    return pa.table({"level": ["account"] * len(rows), "entity_id": [r[0] for r in rows],
                     "dimension": [r[1] for r in rows], "segment": [r[2] for r in rows],
                     "reason": [f'{{"rule": "{r[2]}"}}' for r in rows]})


HEALTH = pa.table({"entity_id": ["a1"], "score": [50.0], "band": ["yellow"],
                   "components": [[50.0]]})


def record(store: Store, as_of: datetime, rows: list[tuple[str, str, str]]) -> int:
    run_id = store.begin_run("run", as_of, "hash1", None, "duckdb", {"retainer.yml": "x"},
                             as_of)
    store.record(run_id, as_of, snapshot(rows), HEALTH, ["usage"],
                 [("events", 10, 1, 0, 2, 0, 0, 0)], "hash1", as_of, 0.5)
    return run_id


def test_a_new_store_is_at_the_current_version(store: Store) -> None:
    assert store.version() == CURRENT_VERSION


def test_unchanged_memberships_are_not_rewritten(store: Store) -> None:
    record(store, T1, [("a1", "lifecycle", "new"), ("a2", "lifecycle", "new")])
    record(store, T2, [("a1", "lifecycle", "new"), ("a2", "lifecycle", "activated")])
    record(store, T3, [("a1", "lifecycle", "new"), ("a2", "lifecycle", "activated")])
    a1 = store.history("a1")
    assert [(i.segment, i.entered_at, i.exited_at) for i in a1] == [("new", T1, None)]
    a2 = store.history("a2")
    assert [(i.segment, i.entered_at, i.exited_at) for i in a2] == [
        ("new", T1, T2), ("activated", T2, None)]
    assert a2[1].reason == {"rule": "activated"}
    assert store.members_at(datetime(2026, 10, 15), "lifecycle") == {"a1": "new", "a2": "new"}
    assert store.members_at(T3, "lifecycle") == {"a1": "new", "a2": "activated"}
    assert store.flows(T1, T3, "lifecycle") == [("new", "activated", 1), ("new", "new", 1)]


def test_an_entity_that_disappears_has_its_memberships_closed(store: Store) -> None:
    record(store, T1, [("a1", "lifecycle", "new"), ("a1", "tag:champion", "yes")])
    run = record(store, T2, [("a1", "lifecycle", "new")])
    assert [(i.dimension, i.exited_at) for i in store.history("a1")] == [
        ("lifecycle", None), ("tag:champion", T2)]
    assert store.transitions(run) == [("a1", "tag:champion", "exited", "yes")]


def test_a_rerun_at_the_same_as_of_replaces_it(store: Store) -> None:
    record(store, T1, [("a1", "lifecycle", "new")])
    record(store, T2, [("a1", "lifecycle", "activated")])
    record(store, T2, [("a1", "lifecycle", "at_risk")])
    assert [(i.segment, i.entered_at, i.exited_at) for i in store.history("a1")] == [
        ("new", T1, T2), ("at_risk", T2, None)]
    statuses = [(r.as_of, r.status, r.in_history) for r in reversed(store.runs())]
    assert statuses == [(T1, "succeeded", True), (T2, "superseded", False),
                        (T2, "succeeded", True)]


def test_an_earlier_run_is_recorded_but_leaves_history_alone(store: Store) -> None:
    record(store, T2, [("a1", "lifecycle", "activated")])
    record(store, T1, [("a1", "lifecycle", "new")])
    assert [(i.segment, i.entered_at) for i in store.history("a1")] == [("activated", T2)]
    assert [r.in_history for r in store.runs()] == [False, True]


def test_rewind_drops_history_from_a_date(store: Store) -> None:
    record(store, T1, [("a1", "lifecycle", "new")])
    record(store, T2, [("a1", "lifecycle", "activated")])
    record(store, T3, [("a1", "lifecycle", "at_risk")])
    assert store.rewind(T2) == 2
    assert [(i.segment, i.exited_at) for i in store.history("a1")] == [("new", None)]
    assert store.latest_as_of() == T1


def test_runs_keep_their_rulebook_and_counts(store: Store) -> None:
    run = record(store, T1, [("a1", "lifecycle", "new")])
    record_ = store.run(run)
    assert (record_.status, record_.rows_read, record_.rows_rejected) == ("succeeded", 10, 3)
    assert store.rulebook_files(run) == {"retainer.yml": "x"}
    assert store.health_series("a1") == [(T1, 50.0, "yellow")]
    with pytest.raises(RetainerError, match="no run 99"):
        store.run(99)


def test_a_killed_run_is_marked_interrupted_on_the_next_open(spec: str, tmp_path: Path
                                                              ) -> None:
    first = open_store(spec, tmp_path)
    first.begin_run("run", T1, "h", None, "duckdb", {}, T1)
    first.close()  # the process died without finishing the run
    second = open_store(spec, tmp_path)
    try:
        assert [r.status for r in second.runs()] == ["interrupted"]
    finally:
        second.close()


def test_an_older_store_is_upgraded_in_place(spec: str, tmp_path: Path) -> None:
    old = open_store(spec, tmp_path)
    # Rebuild it as version 1 wrote it: drop everything, migrate only to 1, add a run.
    tables = old.backend.fetch("SELECT table_name FROM information_schema.tables "
                               "WHERE table_schema = current_schema()")
    for (table,) in tables:
        old.backend.execute(f"DROP TABLE IF EXISTS {table}")
    old.migrate(target=1)
    assert old.version() == 1
    old.backend.execute("INSERT INTO runs (run_id, kind, as_of, started_at, status, "
                        "rulebook_hash, engine, in_history) VALUES (1, 'run', ?, ?, "
                        "'succeeded', 'h', 'duckdb', TRUE)", [T1, T1])
    old.backend.execute("INSERT INTO memberships VALUES ('account', 'a1', 'lifecycle', 'new', "
                        "?, NULL, 1, NULL, 'h', NULL)", [T1])
    old.close()
    upgraded = open_store(spec, tmp_path)
    try:
        assert upgraded.version() == CURRENT_VERSION
        assert [(i.segment, i.entered_at) for i in upgraded.history("a1")] == [("new", T1)]
        assert upgraded.rulebook_files(1) == {}
        record(upgraded, T2, [("a1", "lifecycle", "activated")])
        assert len(upgraded.history("a1")) == 2
    finally:
        upgraded.close()


def test_a_newer_store_is_refused_untouched(spec: str, tmp_path: Path) -> None:
    store = open_store(spec, tmp_path)
    store.backend.execute("INSERT INTO retainer_schema VALUES (?, current_timestamp)",
                          [CURRENT_VERSION + 1])
    store.close()
    with pytest.raises(RetainerError) as caught:
        open_store(spec, tmp_path)
    assert "written by a newer Retainer" in caught.value.problem.message
    assert "has not been changed" in (caught.value.problem.hint or "")
