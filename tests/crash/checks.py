"""Reading and checking what a run left behind: the published outputs, the exports and the
state store, each compared with what good runs publish and record."""

from __future__ import annotations

import json
import time
import zlib
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from retainer.errors import RetainerError
from retainer.project import Project
from retainer.state import Store, open_store
from retainer.state.postgres_backend import split_schema
from tests.crash.projects import IN_USE, NEW, STATUSES, exports, wait_for
from tests.demo_data import accounts_at


@dataclass(frozen=True)
class Outputs:
    tables: dict[str, list[tuple[Any, ...]]]  # every published table but run_info, sorted
    columns: dict[str, list[str]]
    run_info: dict[str, Any]
    exports: dict[str, list[tuple[Any, ...]]]  # the final export files, parsed, sorted

    @property
    def as_of(self) -> datetime:
        return datetime.fromisoformat(self.run_info["as_of"])


OUTPUT_TABLES = ["account_reasons", "account_results", "contact_reasons", "contact_results",
                 "data_quality"]


def staging_tables(db: duckdb.DuckDBPyConnection) -> list[str]:
    """Tables a run stages its outputs in (`<output>__next`) before it publishes them."""
    names = [str(r[0]) for r in db.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
        "AND contains(table_name, '__next') ORDER BY 1").fetchall()]
    assert set(names) <= {f"{n}__next{s}" for n in OUTPUT_TABLES for s in ("", "_persisted")}
    return names


def read_tables(project: Project) -> tuple[dict[str, list[tuple[Any, ...]]],
                                           dict[str, list[str]], dict[str, Any]]:
    with duckdb.connect(str(project.output_database), read_only=True) as db:
        names = [str(r[0]) for r in db.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
            "ORDER BY 1").fetchall()]
        staging = staging_tables(db)  # what a killed run staged; never published
        assert [n for n in names if n not in staging] == [*OUTPUT_TABLES, "run_info"]
        tables = {name: db.execute(f'SELECT * FROM "{name}" ORDER BY ALL').fetchall()
                  for name in OUTPUT_TABLES}
        columns = {name: [str(r[0]) for r in db.execute(f'DESCRIBE "{name}"').fetchall()]
                   for name in tables}
        info = {str(k): json.loads(v) for k, v in
                db.execute("SELECT key, value FROM run_info").fetchall()}
    return tables, columns, info


def parse_export(path: Path) -> list[tuple[Any, ...]]:
    quoted = str(path).replace("'", "''")
    reader = (f"read_parquet('{quoted}')" if ".parquet" in path.name else
              f"read_csv('{quoted}', header = true, all_varchar = true)")
    with duckdb.connect() as db:
        return db.execute(f"SELECT * FROM {reader} ORDER BY ALL").fetchall()


def read_outputs(project: Project, exports_match: bool = True) -> Outputs:
    """The published tables and exports, checked to be complete (and to agree)."""
    tables, columns, info = read_tables(project)
    assert set(info) == {"as_of", "run_id", "rulebook_hash", "project", "explain"}
    assert info["rulebook_hash"] == project.rulebook.content_hash
    as_of = datetime.fromisoformat(info["as_of"])
    for level, count in (("account", accounts_at(project.root, as_of)), ("contact", None)):
        rows = tables[f"{level}_results"]
        position = columns[f"{level}_results"].index("as_of")
        # as_of everywhere, as run_info says; every account exactly once
        assert {row[position] for row in rows} == {as_of}, f"{level}_results mixes as_of"
        ids = [row[columns[f"{level}_results"].index(f"{level}_id")] for row in rows]
        assert len(ids) == len(set(ids))
        if count is not None:
            assert len(rows) == count
    # A `*.next` file is never an export: the exports are exactly the final names, and each
    # parses and holds the published rows.
    directory, names = project.export_dir, exports(project)
    assert names
    finals = sorted(p.name for p in directory.iterdir() if not p.name.endswith(".next"))
    assert finals == sorted(names), f"the export directory holds {finals}, not {names}"
    # (DuckDB's COPY writes over an existing file through a `tmp_` file of its own)
    assert {p.name for p in directory.glob("*.next")} <= {
        f"{prefix}{n}.next" for n in names for prefix in ("", "tmp_")}
    parsed = {name: parse_export(directory / name) for name in names}
    for name in names if exports_match else ():
        table = name.split(".")[0]
        if name.endswith(".parquet"):
            assert parsed[name] == tables[table], f"{name} does not hold {table}"
        assert len(parsed[name]) == len(tables[table]), f"{name} does not hold {table}"
    return Outputs(tables, columns, info, parsed)


@dataclass(frozen=True)
class RunRow:
    status: str
    as_of: datetime
    in_history: bool
    error: str | None
    finished_at: datetime | None


@dataclass(frozen=True)
class State:
    runs: dict[int, RunRow]
    memberships: list[tuple[Any, ...]]  # what history holds, without run ids: comparable
    open: dict[tuple[str, str, str], str]  # (level, entity, dimension) → segment
    latest: int  # the latest run in history

    @property
    def as_of(self) -> datetime:
        return self.runs[self.latest].as_of


def open_store_when_free(project: Project) -> Store:
    """`open_store` as a run would call it. A killed client's PostgreSQL session can outlive
    it for a moment (the server notices the closed socket when its statement ends), so the
    PostgreSQL store may be briefly in use; a DuckDB store never is once the process died."""
    spec = project.rulebook.config.state
    deadline = time.monotonic() + 30
    while True:
        try:
            return open_store(spec, project.root)
        except RetainerError as exc:
            if not spec.startswith("postgresql://") or IN_USE not in exc.problem.message \
                    or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def check_store(project: Project) -> State:
    """Open the store and check that its runs and history are coherent."""
    store = open_store_when_free(project)
    try:
        fetch = store.backend.fetch
        runs = {int(r[0]): RunRow(str(r[1]), r[2], bool(r[3]), r[4], r[5]) for r in fetch(
            "SELECT run_id, status, as_of, in_history, error, finished_at FROM runs")}
        rows = fetch("SELECT level, entity_id, dimension, segment, entered_at, exited_at, "
                     "entered_run, exited_run, rulebook_hash, reason FROM memberships")
        health = {int(r[0]): int(r[1]) for r in fetch(
            "SELECT run_id, count(*) FROM health GROUP BY run_id")}
        quality = {int(r[0]) for r in fetch("SELECT DISTINCT run_id FROM quality")}
    finally:
        store.close()
    # Holding the store means no run is alive: none may still say 'running'.
    assert {r.status for r in runs.values()} <= STATUSES, runs
    succeeded = {i for i, r in runs.items() if r.status == "succeeded"}
    history = {i for i, r in runs.items() if r.in_history}
    # Here every run is at or after the latest as_of, so a succeeded run is in history.
    assert history == succeeded, {i: runs[i] for i in history ^ succeeded}
    assert len({runs[i].as_of for i in history}) == len(history), "two runs at one as_of"
    assert all(r.finished_at is not None for r in runs.values() if r.status != "interrupted")
    assert all(r.error for r in runs.values() if r.status == "failed")
    assert history, "no good run in the store"
    latest = max(history, key=lambda i: runs[i].as_of)
    # Every interval was opened and closed by runs in history, at their as_of.
    opened: Counter[tuple[str, str, str]] = Counter()
    open_segments: dict[tuple[str, str, str], str] = {}
    for level, entity, dimension, segment, entered, exited, entered_run, exited_run, \
            rulebook, _ in rows:
        assert entered_run in history and entered == runs[entered_run].as_of
        assert rulebook == project.rulebook.content_hash
        if exited is None:
            assert exited_run is None
            opened[(level, entity, dimension)] += 1
            open_segments[(level, entity, dimension)] = segment
        else:
            assert exited_run in history and exited == runs[exited_run].as_of
            assert exited > entered
    doubles = [key for key, count in opened.items() if count > 1]
    assert not doubles, f"more than one open interval: {doubles[:5]}"
    # health is kept for the runs in history, one row per account; quality for recorded runs
    assert health == {i: accounts_at(project.root, runs[i].as_of) for i in history}
    assert quality <= {i for i, r in runs.items() if r.status in ("succeeded", "superseded")}
    memberships = sorted((r[0], r[1], r[2], r[3], r[4], r[5], r[9]) for r in rows)
    return State(runs, memberships, open_segments, latest)


def check_agreement(outputs: Outputs, state: State) -> None:
    """The open memberships are exactly the published segments and tags."""
    assert state.runs[outputs.run_info["run_id"]].as_of == outputs.as_of
    expected: dict[tuple[str, str, str], str] = {}
    for level, spec in outputs.run_info["explain"]["levels"].items():
        columns = outputs.columns[f"{level}_results"]
        key = columns.index(f"{level}_id")
        for row in outputs.tables[f"{level}_results"]:
            for dimension in spec["dimensions"]:
                segment = row[columns.index(dimension)]
                if segment is not None:
                    expected[(level, str(row[key]), dimension)] = segment
            for tag in spec["tags"]:
                if row[columns.index(tag)]:
                    expected[(level, str(row[key]), f"tag:{tag}")] = "yes"
    assert state.open == expected


def raw_statuses(project: Project) -> dict[int, str]:
    """Run statuses as they are on disk, before a Store opens (and interrupts) them."""
    spec = project.rulebook.config.state
    if spec.startswith("postgresql://"):
        import psycopg
        from psycopg import sql
        dsn, schema = split_schema(spec)
        assert schema
        wait_for(lambda: not pg_lock_holders(dsn, schema),
                 "the killed run's PostgreSQL session to end")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
            rows = conn.execute("SELECT run_id, status FROM runs").fetchall()
    else:
        with duckdb.connect(str(project.root / spec), read_only=True) as db:
            rows = db.execute("SELECT run_id, status FROM runs").fetchall()
    return {int(r[0]): str(r[1]) for r in rows}


def pg_lock_holders(dsn: str, schema: str) -> list[int]:
    """Backends holding the store's advisory lock (as PostgresBackend takes it)."""
    import psycopg
    key = zlib.crc32(f"retainer:{schema}".encode())
    with psycopg.connect(dsn, autocommit=True) as conn:
        return [int(r[0]) for r in conn.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = 0 "
            "AND objsubid = 1 AND objid::bigint = %s AND granted", [key]).fetchall()]


def duckdb_lock_holders(path: Path) -> set[int]:
    """Processes holding a lock on a DuckDB file, from /proc/locks."""
    inode = f":{path.stat().st_ino}"
    holders = set()
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if "->" not in fields and len(fields) > 5 and fields[5].endswith(inode):
            holders.add(int(fields[4]))
    return holders


def file_version(path: Path) -> tuple[int, int]:
    try:
        info = path.stat()
    except FileNotFoundError:
        return (-1, -1)
    return (info.st_size, info.st_mtime_ns)


def fresh_next_files(directory: Path, since_ns: int) -> list[str]:
    """`*.next` exports written since `since_ns` (not left over by an earlier run)."""
    found = []
    for path in directory.glob("*.next"):
        try:
            if path.stat().st_mtime_ns >= since_ns:
                found.append(path.name)
        except FileNotFoundError:
            pass  # renamed into place while we looked
    return found


@dataclass(frozen=True)
class Expected:
    outputs: Outputs
    memberships: list[tuple[Any, ...]]


def assert_result(outputs: Outputs, expected: Expected, exports: bool = True) -> None:
    """Every published table (and export) is exactly the expected result."""
    assert outputs.as_of == expected.outputs.as_of
    for name, rows in expected.outputs.tables.items():
        assert outputs.tables[name] == rows, f"{name} is not the complete expected result"
    for name, rows in expected.outputs.exports.items() if exports else ():
        assert outputs.exports[name] == rows, f"{name} is not the expected export"


def new_result(expected: dict[str, Expected], store_as_of: datetime) -> Expected:
    """What a good run at NEW_AS_OF publishes, given the store's latest as_of at its start."""
    return expected["again" if store_as_of == NEW else "new"]
