"""After `retainer forget`, no byte of the person is left in the database files: the deleted
rows DuckDB keeps in its row groups and freed blocks, and the dead tuples PostgreSQL keeps,
are rewritten away — and nothing else changes. The files are read byte by byte, the way
`strings` or a disk image would read them."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest

from retainer.errors import RetainerError
from retainer.project import Project
from retainer.state.postgres_backend import split_schema
from retainer.state.schema import CURRENT_VERSION
from tests.conftest import ProjectWriter
from tests.privacy.test_forget import (
    DATA,
    PERSON_EMAIL,
    PERSON_ID,
    PROJECT,
    RULEBOOK,
    SECRETS,
    act_and_sync,
    everything,
    leaked,
    quick,
    retainer,
)

OTHERS = ("ctc-bob-0002", "ctc-cid-0003")
# The store's tables the erasure changes (rows about the person, and the tombstones); every
# other table comes out of it, and of the compaction, exactly as it was.
CHANGED = {"memberships", "ledger", "decisions", "sync_state", "erasures", "store_secrets"}


def project(write_project: ProjectWriter, postgres_url: str, store: str = "") -> Path:
    """The end-to-end erasure test's project after a run, an act and a sync."""
    root = write_project(store + PROJECT.lstrip(),
                         {"rules.yml": RULEBOOK.replace("URL", postgres_url)}, DATA)
    act_and_sync(root, datetime(2026, 12, 1))
    assert leaked(everything(root, postgres_url)) == list(SECRETS)
    return root


def raw_hits(folder: Path) -> dict[str, list[str]]:
    """Which of the person's values each file under `folder` holds, byte for byte."""
    found = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes().lower()
        hits = [s for s in SECRETS if s.lower().encode() in data]
        if hits:
            found[str(path.relative_to(folder))] = hits
    return found


def files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(path: Path) -> dict[str, Any]:
    """A DuckDB file's schema (every table, view, index, sequence and macro with its
    definition) and the rows of every table, sorted."""
    with duckdb.connect(str(path), read_only=True) as db:
        schema = db.sql(
            "SELECT 'table', table_name, sql FROM duckdb_tables() UNION ALL "
            "SELECT 'view', view_name, sql FROM duckdb_views() WHERE NOT internal UNION ALL "
            "SELECT 'index', index_name, sql FROM duckdb_indexes() UNION ALL "
            "SELECT 'sequence', sequence_name, sql FROM duckdb_sequences() UNION ALL "
            "SELECT 'macro', function_name, macro_definition FROM duckdb_functions() "
            "WHERE function_type LIKE '%macro' AND NOT internal UNION ALL "
            "SELECT 'constraint', table_name || ' ' || constraint_type, constraint_text "
            "FROM duckdb_constraints() ORDER BY ALL").fetchall()
        tables = [name for kind, name, _ in schema if kind == "table"]
        return {"schema": schema, **{t: sorted(map(repr, db.sql(f'SELECT * FROM "{t}"')
                                                       .fetchall())) for t in tables}}


def without_person(table: list[str]) -> list[str]:
    return [row for row in table if not leaked(row)]


@contextmanager
def held(path: Path) -> Iterator[None]:
    """Another process holding a database file open, as a run in progress does."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys; db = duckdb.connect(sys.argv[1]); "
                               "print('open', flush=True); sys.stdin.readline()", str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "open\n"
        yield
    finally:
        holder.communicate("\n", timeout=60)


def test_forget_rewrites_the_files_and_leaves_everything_else_as_it_was(
        write_project: ProjectWriter, postgres_url: str) -> None:
    root = project(write_project, postgres_url)
    state = root / ".retainer"
    before = {name: snapshot(state / name) for name in ("state.duckdb", "output.duckdb")}
    assert raw_hits(state) == {
        "export/contact_results.csv": [PERSON_ID], "export/contact_results.parquet": [PERSON_ID],
        "output.duckdb": [PERSON_ID], "state.duckdb": list(SECRETS)}

    done = retainer("forget", "--email", PERSON_EMAIL, "-p", root, "--yes", "--no-compact")
    assert "not compacted (--no-compact): deleted bytes stay in the database files until " \
           "'retainer forget --compact'" in done
    assert "✓ forgotten" in done
    # No table holds the person any more, but the files still do: the gap compaction closes.
    assert leaked(everything(root, postgres_url)) == []
    assert raw_hits(state) == {"output.duckdb": [PERSON_ID], "state.duckdb": list(SECRETS)}
    assert "not compacted since" in quick("erasures", "-p", root)
    erased = {name: snapshot(state / name) for name in ("state.duckdb", "output.duckdb")}

    sums = {name: digest(state / name) for name in ("state.duckdb", "output.duckdb")}
    dry = quick("forget", "--compact", "--dry-run", "-p", root)
    assert "would rewrite the state store and the published results (owed since" in dry
    assert {name: digest(state / name) for name in sums} == sums
    done = retainer("forget", "--compact", "-p", root)
    assert "rewrote .retainer/state.duckdb (" in done
    assert "rewrote .retainer/output.duckdb (" in done
    assert "✓ compacted: no deleted bytes are left in the database files" in done
    assert raw_hits(state) == {}
    assert "compaction.pending" not in files(state)
    assert not any(name.endswith((".wal", ".compacting")) for name in files(state))
    assert "not compacted" not in quick("erasures", "-p", root)

    # The rewrite changed no definition and no row: schema version, history and all.
    compacted = {name: snapshot(state / name) for name in ("state.duckdb", "output.duckdb")}
    assert compacted == erased
    assert len(compacted["state.duckdb"]["retainer_schema"]) == CURRENT_VERSION
    # And the erasure changed nothing about anyone else: every row not about the person is
    # still there as it was.
    old, new = before["state.duckdb"], compacted["state.duckdb"]
    assert new["schema"] == old["schema"]
    assert {table for table in old if new[table] != old[table]} == CHANGED
    for table in set(old) - {"schema"}:
        assert set(without_person(old[table])) <= set(new[table]), table
    assert new["memberships"] == without_person(old["memberships"])
    assert len(new["memberships"]) == len(old["memberships"]) - 2
    old, new = before["output.duckdb"], compacted["output.duckdb"]
    assert new["schema"] == old["schema"]
    for table in set(old) - {"schema"}:
        assert new[table] == without_person(old[table]), table
    assert len(new["contact_results"]) == len(OTHERS)

    # Once the sources have deleted them too, a run works on the new files as before.
    for name, text in DATA.items():
        kept = [line for line in text.splitlines(keepends=True) if not leaked(line)]
        (root / "data" / name).write_text("".join(kept), encoding="utf-8")
    retainer("run", "-p", root, "--as-of", "2026-12-02")
    with duckdb.connect(str(state / "output.duckdb"), read_only=True) as db:
        assert db.sql("SELECT contact_id, persona FROM contact_results ORDER BY 1"
                      ).fetchall() == [(other, "active") for other in OTHERS]
    assert raw_hits(state) == {}


def test_forget_compacts_by_default(write_project: ProjectWriter, postgres_url: str) -> None:
    root = project(write_project, postgres_url)
    dry = retainer("forget", "--contact", PERSON_ID, "-p", root, "--dry-run")
    assert "then the database files are rewritten without the deleted bytes" in dry
    done = retainer("forget", "--contact", PERSON_ID, "-p", root, "--yes")
    assert "rewrote .retainer/state.duckdb (" in done
    assert "rewrote .retainer/output.duckdb (" in done
    assert "✓ forgotten" in done
    assert raw_hits(root / ".retainer") == {}
    assert "compaction.pending" not in files(root / ".retainer")


def test_a_run_after_the_erasure_keeps_the_person_out_of_the_files(
        write_project: ProjectWriter, postgres_url: str) -> None:
    # The person is still in the sources: the next run computes them, but stages its outputs
    # in memory while anyone is forgotten, so not even a deleted row of theirs reaches a file.
    root = project(write_project, postgres_url)
    retainer("forget", "--contact", PERSON_ID, "-p", root, "--yes")
    assert raw_hits(root / ".retainer") == {}
    Project(root).run(datetime(2026, 12, 2))
    assert raw_hits(root / ".retainer") == {}
    with duckdb.connect(str(root / ".retainer" / "output.duckdb"), read_only=True) as db:
        assert db.sql("SELECT contact_id FROM contact_results ORDER BY 1").fetchall() == [
            (other,) for other in OTHERS]


def test_outputs_a_failed_run_left_staged_are_erased_too(
        write_project: ProjectWriter, postgres_url: str) -> None:
    # A run that fails after staging its outputs in the file (here: its export cannot be
    # written) leaves them there, unpublished; neither forget nor a later run keeps them.
    root = project(write_project, postgres_url)
    blocker = root / ".retainer" / "export" / "contact_results.parquet.next"
    blocker.mkdir()
    with pytest.raises(RetainerError):
        Project(root).run(datetime(2026, 12, 2))
    blocker.rmdir()
    with duckdb.connect(str(root / ".retainer" / "output.duckdb"), read_only=True) as db:
        staged = {r[0] for r in db.sql("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert "contact_results__next" in staged   # the failed run's, holding the person
    retainer("forget", "--contact", PERSON_ID, "-p", root, "--yes")
    assert raw_hits(root / ".retainer") == {}
    Project(root).run(datetime(2026, 12, 3))
    assert raw_hits(root / ".retainer") == {}


def test_a_run_holding_the_files_stops_compaction_and_nothing_changes(
        write_project: ProjectWriter, postgres_url: str) -> None:
    root = project(write_project, postgres_url)
    state = root / ".retainer"
    with held(state / "output.duckdb"):
        refused = quick("forget", "--email", PERSON_EMAIL, "-p", root, "--yes", code=1)
        assert "output.duckdb is in use by another Retainer process" in refused
    assert leaked(everything(root, postgres_url)) == list(SECRETS)   # nothing was erased

    retainer("forget", "--email", PERSON_EMAIL, "-p", root, "--yes", "--no-compact")
    sums = {name: digest(state / name) for name in ("state.duckdb", "output.duckdb")}
    with held(state / "state.duckdb"):
        refused = quick("forget", "--compact", "-p", root, code=1)
        assert "state.duckdb is in use by another Retainer process" in refused
        assert "wait for it to finish, then try again" in refused
    # The erasure stands, the files are as they were, and compaction is still owed.
    assert {name: digest(state / name) for name in sums} == sums
    assert "compaction.pending" in files(state)
    assert leaked(everything(root, postgres_url)) == []
    done = retainer("forget", "--compact", "-p", root)
    assert "✓ compacted" in done
    assert raw_hits(state) == {}


def test_a_compaction_that_fails_leaves_the_erasure_done_and_the_compaction_owed(
        write_project: ProjectWriter, postgres_url: str) -> None:
    root = project(write_project, postgres_url)
    state = root / ".retainer"
    (state / "state.duckdb.compacting").mkdir()     # the new file cannot be written
    done = retainer("forget", "--email", PERSON_EMAIL, "-p", root, "--yes", code=1)
    assert "error: cannot rewrite .retainer/state.duckdb: Is a directory; it is unchanged" \
           in done
    assert "hint: the erasure itself is done; deleted bytes may stay in the database files " \
           "until 'retainer forget --compact' succeeds" in done
    assert "✓ forgotten" not in done
    assert leaked(everything(root, postgres_url)) == []
    erasures = quick("erasures", "-p", root)
    assert "complete" in erasures and "unfinished" not in erasures
    assert "not compacted since" in erasures
    assert raw_hits(state)["state.duckdb"] == list(SECRETS)

    (state / "state.duckdb.compacting").rmdir()
    assert "✓ compacted" in retainer("forget", "--compact", "-p", root)
    assert raw_hits(state) == {}
    assert "not compacted" not in quick("erasures", "-p", root)


def test_a_compaction_killed_midway_leaves_the_original_and_the_next_one_finishes(
        write_project: ProjectWriter, postgres_url: str) -> None:
    root = project(write_project, postgres_url)
    state = root / ".retainer"
    retainer("forget", "--email", PERSON_EMAIL, "-p", root, "--yes", "--no-compact")
    erased = snapshot(state / "state.duckdb")
    # What a kill during the copy leaves: the new file half written, with its log.
    whole = (state / "state.duckdb").read_bytes()
    (state / "state.duckdb.compacting").write_bytes(whole[:len(whole) // 2])
    (state / "state.duckdb.compacting.wal").write_bytes(b"\x00" * 512)
    (state / "output.duckdb.compacting").write_bytes(b"")

    # The original is whole, and read as before.
    assert snapshot(state / "state.duckdb") == erased
    assert "not compacted since" in quick("erasures", "-p", root)
    done = retainer("forget", "--compact", "-p", root)
    assert "✓ compacted" in done
    assert files(state) == ["export/account_results.csv", "export/account_results.parquet",
                            "export/contact_results.csv", "export/contact_results.parquet",
                            "output.duckdb", "state.duckdb"]
    assert raw_hits(state) == {}
    assert snapshot(state / "state.duckdb") == erased


def test_the_old_file_is_zeroed_unless_another_link_keeps_it(
        write_project: ProjectWriter, postgres_url: str) -> None:
    root = project(write_project, postgres_url)
    state = root / ".retainer"
    retainer("forget", "--email", PERSON_EMAIL, "-p", root, "--yes", "--no-compact")
    backup = root / "backups" / "output.duckdb"
    backup.parent.mkdir()
    os.link(state / "output.duckdb", backup)      # someone's copy, by a second hard link
    kept = digest(backup)
    with (state / "state.duckdb").open("rb") as old:  # read after it is replaced
        size = len(old.read())
        retainer("forget", "--compact", "-p", root)
        old.seek(0)
        assert old.read() == bytes(size)
    assert raw_hits(state) == {}
    assert digest(backup) == kept and raw_hits(backup.parent) == {"output.duckdb": [PERSON_ID]}


# --- PostgreSQL -----------------------------------------------------------------------------

def relations(url: str) -> dict[str, tuple[int, str]]:
    """Every table of the store, its indexes and TOAST data: file node and path. (The
    schema also holds the table the sync `people_db` delivers to: a destination's, whose
    deleted rows its owner vacuums.)"""
    dsn, schema = split_schema(url)
    with psycopg.connect(dsn) as connection:
        rows = connection.execute(
            "SELECT c.relname, r.relname, pg_relation_filenode(r.oid), "
            "pg_relation_filepath(r.oid) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "JOIN pg_class r ON r.oid IN (c.oid, c.reltoastrelid) OR r.oid IN ("
            "  SELECT indexrelid FROM pg_index WHERE indrelid IN (c.oid, c.reltoastrelid)) "
            "WHERE n.nspname = %s AND c.relkind = 'r' AND c.relname <> 'people_db'",
            [schema]).fetchall()
    return {f"{table}/{relation}": (node, path) for table, relation, node, path in rows}


def relation_hits(url: str) -> dict[str, list[str]]:
    """Which of the person's values the server's files of the store hold, byte for byte
    (after a checkpoint has written every page out)."""
    dsn, _ = split_schema(url)
    found = {}
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute("CHECKPOINT")
        for name, (_, path) in sorted(relations(url).items()):
            row = connection.execute("SELECT pg_read_binary_file(%s)", [path]).fetchone()
            data = bytes(row[0]).lower() if row else b""
            hits = [s for s in SECRETS if s.lower().encode() in data]
            if hits:
                found[name] = hits
    return found


def postgres_snapshot(url: str) -> dict[str, Any]:
    """The schema's columns, indexes and constraints, and every table's rows, sorted."""
    dsn, schema = split_schema(url)
    with psycopg.connect(dsn) as connection:
        found: dict[str, Any] = {"schema": connection.execute(
            "SELECT table_name, column_name, data_type, is_nullable, column_default "
            "FROM information_schema.columns WHERE table_schema = %s UNION ALL "
            "SELECT tablename, indexname, indexdef, NULL, NULL FROM pg_indexes "
            "WHERE schemaname = %s ORDER BY 1, 2", [schema, schema]).fetchall()}
        for (table,) in connection.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                [schema]).fetchall():
            found[table] = sorted(map(repr, connection.execute(
                f'SELECT * FROM "{schema}"."{table}"').fetchall()))
    return found


def dead_tuples(url: str) -> dict[str, int]:
    dsn, schema = split_schema(url)
    with psycopg.connect(dsn) as connection:
        connection.execute("SELECT pg_stat_clear_snapshot()")
        return {str(t): int(n) for t, n in connection.execute(
            "SELECT relname, n_dead_tup FROM pg_stat_user_tables WHERE schemaname = %s",
            [schema]).fetchall()}


def test_forget_vacuums_a_postgres_store(write_project: ProjectWriter,
                                         postgres_url: str) -> None:
    root = project(write_project, postgres_url, f"state: '{postgres_url}'\n")
    retainer("forget", "--email", PERSON_EMAIL, "-p", root, "--yes", "--no-compact")
    assert leaked(everything(root, postgres_url)) == []
    # The rows are gone from every table, but their dead versions are still in its file.
    hits = relation_hits(postgres_url)
    assert {name.split("/")[0] for name in hits} == {"memberships", "ledger", "decisions",
                                                     "sync_state"}
    nodes = relations(postgres_url)
    erased = postgres_snapshot(postgres_url)
    assert len(erased["retainer_schema"]) == CURRENT_VERSION

    done = retainer("forget", "--compact", "-p", root)
    assert "rewrote 14 tables of postgresql://127.0.0.1/test" in done
    assert "✓ compacted" in done
    assert relation_hits(postgres_url) == {}
    assert raw_hits(root / ".retainer") == {}
    # Every table of the store was written anew, its indexes and TOAST data too.
    rewritten = relations(postgres_url)
    assert len(nodes) > 14 and rewritten.keys() == nodes.keys()
    assert [name for name in nodes if rewritten[name][0] == nodes[name][0]] == []
    assert all(n == 0 for t, n in dead_tuples(postgres_url).items() if t != "people_db")
    assert postgres_snapshot(postgres_url) == erased
    retainer("run", "-p", root, "--as-of", "2026-12-02")
    assert relation_hits(postgres_url) == {}


def test_a_store_role_that_does_not_own_the_tables_is_told_not_reported_done(
        postgres_url: str) -> None:
    # VACUUM (FULL) skips, with only a warning, a table its role does not own: compaction
    # must fail loudly rather than report a rewrite that did not happen.
    from retainer.errors import RetainerError as Refused
    from retainer.state import open_store
    from retainer.state.compact import vacuum_postgres
    from retainer.state.postgres_backend import PostgresBackend

    open_store(postgres_url, Path(".")).close()   # the tables, owned by postgres
    role = f"retainer_app_{uuid.uuid4().hex[:10]}"
    schema = postgres_url.rsplit("schema=", 1)[1]
    admin = psycopg.connect(postgres_url.split("?")[0], autocommit=True)
    try:
        admin.execute(f'CREATE ROLE "{role}" LOGIN')
        admin.execute(f'GRANT CREATE ON DATABASE test TO "{role}"')
        admin.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"')
        admin.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA '
                      f'"{schema}" TO "{role}"')
        backend = PostgresBackend(postgres_url.replace("postgres@", f"{role}@"))
        try:
            with pytest.raises(Refused) as refused:
                vacuum_postgres(backend)
        finally:
            backend.close()
        message = refused.value.problem.message
        assert "does not own" in message and "memberships" in message
    finally:
        admin.execute(f'DROP OWNED BY "{role}"')
        admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        admin.close()


def test_the_rewritten_file_keeps_its_storage_format(tmp_path: Path) -> None:
    # A file written in an older storage format (readable by older DuckDB versions, say a
    # BI tool's) is rewritten in that format, not silently upgraded.
    from retainer.state.compact import rewrite_duckdb

    path = tmp_path / "old.duckdb"
    with duckdb.connect() as maker:
        maker.execute(f"ATTACH '{path}' AS old (STORAGE_VERSION 'v1.0.0')")
        maker.execute("CREATE TABLE old.t AS SELECT range AS i FROM range(1000)")
    rewrite_duckdb(duckdb.connect(str(path)), path)
    with duckdb.connect(str(path), read_only=True) as db:
        [tags] = db.execute("SELECT tags FROM duckdb_databases() WHERE database_name = 'old'"
                            ).fetchone() or [None]
        assert tags == {"storage_version": "v1.0.0+"}
        assert db.execute("SELECT count(*), sum(i) FROM t").fetchall() == [(1000, 499500)]


def test_a_table_held_by_another_session_makes_compaction_give_up_not_hang(
        postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from retainer.state import compact, open_store
    from retainer.state.postgres_backend import PostgresBackend

    open_store(postgres_url, Path(".")).close()
    schema = postgres_url.rsplit("schema=", 1)[1]
    monkeypatch.setattr(compact, "LOCK_TIMEOUT_S", 1)
    with psycopg.connect(postgres_url.split("?")[0]) as holder:   # a dashboard, mid-query
        holder.execute(f'LOCK TABLE "{schema}".memberships IN ACCESS SHARE MODE')
        backend = PostgresBackend(postgres_url)
        try:
            with pytest.raises(RetainerError) as refused:
                compact.vacuum_postgres(backend)
        finally:
            backend.close()
    assert "lock timeout" in refused.value.problem.message
    assert "forget --compact" in (refused.value.problem.hint or "")


def test_a_store_role_that_may_not_create_its_schema_is_told(postgres_url: str) -> None:
    from retainer.state import open_store

    role = f"retainer_app_{uuid.uuid4().hex[:10]}"
    admin = psycopg.connect(postgres_url.split("?")[0], autocommit=True)
    try:
        admin.execute(f'CREATE ROLE "{role}" LOGIN')
        admin.execute(f'REVOKE CREATE ON DATABASE test FROM "{role}"')
        with pytest.raises(RetainerError) as refused:
            open_store(postgres_url.replace("postgres@", f"{role}@"), Path("."))
        assert "cannot create the state store's schema" in refused.value.problem.message
    finally:
        admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        admin.close()
