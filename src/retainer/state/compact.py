"""Rewriting a database so the bytes of deleted rows leave its files.

A delete does not erase: DuckDB keeps a deleted row in its row group (marked deleted) and
in freed blocks, PostgreSQL keeps it as a dead tuple, until the space happens to be reused.
A DuckDB file is therefore copied, object by object, into a new file that holds only live
rows, and moved over the old one; PostgreSQL tables are rewritten by `VACUUM (FULL)`.

The DuckDB rewrite runs on the connection that already holds the file, so the lock a run
needs stays taken from the erasure to the swap: a run either fails to open the file ("in
use") or opens the finished new one. The new file stays attached (locked) through the
rename too, and the old connection is closed only after it — closing it first would let a
run in between. A kill at any moment leaves the old file whole; a half-written new file is
removed by the next rewrite.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
from sqlglot import exp

from retainer.errors import RetainerError, first_line
from retainer.state.backend import Backend
from retainer.state.duckdb_backend import AttachedDuckDBBackend, DuckDBBackend
from retainer.state.postgres_backend import PostgresBackend
from retainer.state.schema import store_tables

PARTIAL_SUFFIX = ".compacting"   # the new file, until it is moved over the old one
TARGET = "retainer_compacted"    # the new file's name in the connection while it is written
ZEROS = bytes(1 << 20)

# Everything a database holds besides its rows, as (kind, schema, name, definition): the
# copy must have the same, or it is not moved into place. A sequence's definition carries
# its next value; a table's and a column's comments are kept as well.
INVENTORY = """
SELECT 'table', schema_name, table_name, sql || coalesce(' -- ' || comment, '')
  FROM duckdb_tables() WHERE database_name = $db
UNION ALL SELECT 'column', schema_name, table_name || '.' || column_name, comment
  FROM duckdb_columns() WHERE database_name = $db AND comment IS NOT NULL
UNION ALL SELECT 'view', schema_name, view_name, sql
  FROM duckdb_views() WHERE database_name = $db AND NOT internal
UNION ALL SELECT 'index', schema_name, index_name, sql
  FROM duckdb_indexes() WHERE database_name = $db
UNION ALL SELECT 'sequence', schema_name, sequence_name, sql
  FROM duckdb_sequences() WHERE database_name = $db
UNION ALL SELECT function_type, schema_name, function_name, macro_definition
  FROM duckdb_functions() WHERE database_name = $db AND NOT internal
   AND function_type IN ('macro', 'table_macro')
UNION ALL SELECT 'type', schema_name, type_name, logical_type
  FROM duckdb_types() WHERE database_name = $db AND NOT internal
ORDER BY ALL
"""


@dataclass(frozen=True)
class Rewritten:
    """One database rewritten: what, and its size before and after, in bytes."""

    what: str
    before: int
    after: int


def compact_store(backend: Backend, relative_to: Path | None = None) -> Rewritten:
    """Rewrite the store's database. A DuckDB store's connection is closed by it (the file
    it had open is gone); a PostgreSQL store's stays open."""
    if isinstance(backend, PostgresBackend):
        return vacuum_postgres(backend)
    if isinstance(backend, DuckDBBackend) and not isinstance(backend, AttachedDuckDBBackend):
        return rewrite_duckdb(backend.connection, backend.path, relative_to)
    raise RetainerError(f"cannot compact the state store {backend.description} while a run "
                        "has it attached", hint="compact after the run")


# --- DuckDB -------------------------------------------------------------------------------

def rewrite_duckdb(connection: duckdb.DuckDBPyConnection, path: Path,
                   relative_to: Path | None = None) -> Rewritten:
    """Copy the database `connection` has open at `path` into a new file and move it over
    the old one; `connection` is closed on return, whatever happened."""
    path = path.resolve()
    shown = _shown(path, relative_to)
    partial = path.with_name(path.name + PARTIAL_SUFFIX)
    # Descriptors are closed only after the connection: closing any descriptor of a file
    # drops every lock this process holds on it, DuckDB's included.
    held: list[int] = []
    replaced = False
    try:
        before = _copy(connection, path, partial, shown)
        held.append(os.open(partial, os.O_RDONLY))
        os.fsync(held[-1])
        held.append(os.open(path, os.O_RDWR))
        os.replace(partial, path)
        replaced = True
    except (duckdb.Error, OSError) as exc:
        raise RetainerError(f"cannot rewrite {shown}: {_reason(exc)}; it is unchanged",
                            hint="free disk space beside it if it is short, then run "
                                 "'retainer forget --compact'") from None
    finally:
        connection.close()
        for leftover in () if replaced else (partial, _wal(partial)):
            with contextlib.suppress(OSError):
                leftover.unlink(missing_ok=True)
        if replaced:
            with contextlib.suppress(OSError):
                _overwrite(held[-1])
        for handle in held:
            os.close(handle)
    try:
        _sync_directory(path.parent)
    except OSError as exc:
        raise RetainerError(f"{shown} was rewritten, but the rename may not survive a "
                            f"crash: {_reason(exc)}",
                            hint="run 'retainer forget --compact' again") from None
    return Rewritten(shown, before.st_size, path.stat().st_size)


def _copy(connection: duckdb.DuckDBPyConnection, path: Path, partial: Path, shown: str
          ) -> os.stat_result:
    """Write every object and live row of the database into `partial`, attached to the
    connection (and so locked) until the connection is closed. Returns the old file's
    status, taken after its checkpoint."""
    source = str(connection.execute("SELECT current_database()").fetchall()[0][0])
    connection.execute(f"CHECKPOINT {_quoted(source)}")
    before = path.stat()
    _forget_wal(path)
    for leftover in (partial, _wal(partial)):
        leftover.unlink(missing_ok=True)  # from a rewrite that was killed
    attach = exp.Attach(this=exp.alias_(exp.Literal.string(str(partial)), TARGET),
                        expressions=_same_storage(connection, source))
    connection.execute(attach.sql("duckdb"))
    connection.execute(f"COPY FROM DATABASE {_quoted(source)} TO {TARGET}")
    connection.execute(f"CHECKPOINT {TARGET}")
    _same_contents(connection, source, shown)
    _forget_wal(partial)
    # The new file is the old one's in all but its blocks: same permissions, same owner
    # (when this process may give it away).
    os.chmod(partial, stat.S_IMODE(before.st_mode))
    made = partial.stat()
    if (made.st_uid, made.st_gid) != (before.st_uid, before.st_gid):
        with contextlib.suppress(PermissionError):
            os.chown(partial, before.st_uid, before.st_gid)
    return before


def _same_contents(connection: duckdb.DuckDBPyConnection, source: str, shown: str) -> None:
    """Refuse a copy that lacks an object or a row of the original."""
    old, new = (_inventory(connection, name) for name in (source, TARGET))
    if old != new:
        missing = sorted(set(old.items()) ^ set(new.items()), key=str)[:3]
        raise RetainerError(f"the rewritten copy of {shown} differs from it ({missing}); "
                            "nothing was replaced",
                            hint="report this, with the DuckDB version, as a Retainer bug")


def _inventory(connection: duckdb.DuckDBPyConnection, catalog: str) -> dict[str, Any]:
    """Every object of an attached database with its definition, and each table's rows."""
    objects = connection.execute(INVENTORY, {"db": catalog}).fetchall()
    found: dict[str, Any] = {f"{kind} {schema}.{item}": definition
                             for kind, schema, item, definition in objects}
    for kind, schema, item, _ in objects:
        if kind == "table":
            count = exp.select(exp.Count(this=exp.Star())).from_(
                exp.table_(item, db=schema, catalog=catalog, quoted=True))
            found[f"rows {schema}.{item}"] = connection.execute(
                count.sql("duckdb")).fetchall()[0][0]
    return found


def _forget_wal(path: Path) -> None:
    """A checkpointed database has nothing left in its write-ahead log; an empty one is
    removed so it cannot be taken for the new file's."""
    wal = _wal(path)
    if wal.exists() and wal.stat().st_size:
        raise RetainerError(f"{wal.name} still holds changes after a checkpoint",
                            hint="is another connection writing to it? try again when it "
                                 "is done")
    wal.unlink(missing_ok=True)


def _overwrite(handle: int) -> None:
    """Zero the old file's blocks once nothing can open it any more (a file system that
    writes in place then keeps none of its bytes). Skipped while another hard link still
    names it: that is someone's copy."""
    if os.fstat(handle).st_nlink:
        return
    remaining = os.fstat(handle).st_size
    os.lseek(handle, 0, os.SEEK_SET)
    while remaining > 0:
        remaining -= os.write(handle, ZEROS[:remaining])
    os.fsync(handle)


def _sync_directory(folder: Path) -> None:
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _wal(path: Path) -> Path:
    return path.with_name(path.name + ".wal")


def _quoted(name: str) -> str:
    return exp.to_identifier(name, quoted=True).sql("duckdb")


def _shown(path: Path, relative_to: Path | None) -> str:
    if relative_to is not None and path.is_relative_to(relative_to.resolve()):
        return str(path.relative_to(relative_to.resolve()))
    return str(path)


def _reason(exc: Exception) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return first_line(exc)


# --- PostgreSQL ---------------------------------------------------------------------------

def _same_storage(connection: duckdb.DuckDBPyConnection, source: str) -> list[exp.Expr]:
    """The new file is written in the old one's storage format: a file older DuckDB
    versions (a BI tool's) could read stays readable to them."""
    rows = connection.execute("SELECT tags FROM duckdb_databases() WHERE database_name = ?",
                              [source]).fetchall()
    version = str((rows[0][0] or {}).get("storage_version", "")) if rows else ""
    if not version:
        return []
    return [exp.AttachOption(this=exp.var("STORAGE_VERSION"),
                             expression=exp.Literal.string(version.rstrip("+")))]


LOCK_TIMEOUT_S = 60  # how long VACUUM waits for a table another session holds


def vacuum_postgres(backend: PostgresBackend) -> Rewritten:
    """`VACUUM (FULL, ANALYZE)` every table of the store: each is written anew with only its
    live rows, its indexes rebuilt, and its planner statistics sampled again from them.

    Every table, not only those the erasure changed: a row updated earlier (a ledger entry
    sent, a membership closed) left an older version of itself behind wherever it was.
    """
    from psycopg import sql
    from psycopg.pq import TransactionStatus
    # VACUUM refuses to run inside a transaction block; the store's connection is in
    # autocommit mode, and idle between the erasure's transactions.
    if backend.connection.info.transaction_status != TransactionStatus.IDLE:
        raise RetainerError("cannot vacuum the state store inside a transaction")
    tables = [name for name in sorted(store_tables()) if backend.has_table(name)]
    # VACUUM skips, with only a warning, a table the role does not own: say so instead of
    # reporting a rewrite that did not happen.
    foreign = _not_owned(backend, tables)
    if foreign:
        raise RetainerError(
            f"cannot rewrite the state store's tables: {backend.description}'s role does not "
            f"own {', '.join(foreign)}",
            hint="run 'retainer forget --compact' with the tables' owner in the state URL, or "
                 "have their owner run VACUUM (FULL) on them")
    try:
        before = _postgres_size(backend, tables)
        # A session holding a table (an open transaction, a dashboard) would make VACUUM
        # wait for ever: it gives up after a minute and says so.
        backend.connection.execute(f"SET lock_timeout = '{LOCK_TIMEOUT_S}s'")
        try:
            backend.connection.execute(sql.SQL("VACUUM (FULL, ANALYZE) {}").format(
                sql.SQL(", ").join(sql.Identifier(name) for name in tables)))
        finally:
            backend.connection.execute("RESET lock_timeout")
        after = _postgres_size(backend, tables)
    except Exception as exc:  # psycopg's errors; the driver is imported only when used
        raise RetainerError(f"cannot vacuum the state store's tables: {_reason(exc)}",
                            hint="VACUUM (FULL) waits for every other session using "
                                 "the tables: close them, then run 'retainer forget "
                                 "--compact'") from None
    return Rewritten(f"{len(tables)} tables of {backend.description}", before, after)


def _not_owned(backend: PostgresBackend, tables: Sequence[str]) -> list[str]:
    """The tables of the store's schema whose owner the session's role is not (nor a member
    of)."""
    owner = exp.func("pg_has_role", exp.column("relowner", "c"), exp.Literal.string("USAGE"))
    query = (exp.select(exp.column("relname", "c"))
             .from_(exp.alias_(exp.to_table("pg_catalog.pg_class"), "c"))
             .join(exp.alias_(exp.to_table("pg_catalog.pg_namespace"), "n"),
                   on=exp.column("oid", "n").eq(exp.column("relnamespace", "c")))
             .where(exp.column("nspname", "n").eq(exp.func("current_schema")))
             .where(exp.column("relname", "c").isin(*(exp.Literal.string(t) for t in tables)))
             .where(exp.not_(owner)).order_by(exp.column("relname", "c")))
    return [str(row[0]) for row in backend.fetch(query)] if tables else []


def _postgres_size(backend: PostgresBackend, tables: Sequence[str]) -> int:
    names = exp.cast(exp.Placeholder(), exp.DataType.build("TEXT[]", dialect="postgres"))
    size = exp.func("pg_total_relation_size", exp.func("to_regclass", exp.column("name")))
    query = exp.select(exp.func("coalesce", exp.func("sum", size), exp.Literal.number(0))
                       ).from_(exp.Unnest(expressions=[names], alias=exp.TableAlias(
                           this=exp.to_identifier("t"), columns=[exp.to_identifier("name")])))
    return int(backend.fetch(query, [list(tables)])[0][0])
