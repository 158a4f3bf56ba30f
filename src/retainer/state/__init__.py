"""The state store: runs, membership history with reasons, health per run.

A DuckDB file by default; a PostgreSQL database when `state:` is a `postgresql://` URL. Both
backends take the same statements (sqlglot trees rendered in their dialect) and the same
migrations.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from retainer.state.store import Store

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def store_exists(spec: str, root: Path) -> bool:
    """Whether the store named by `state:` is there to read, for readers that must not
    create one: opening a missing DuckDB file creates an empty store. A PostgreSQL store
    counts as there; its tables are created empty on first open."""
    return spec.startswith(POSTGRES_SCHEMES) or _duckdb_path(spec, root).exists()


def open_store(spec: str, root: Path, engine_connection: Any = None) -> Store:
    """Open (creating and migrating as needed) the store named by `state:` in retainer.yml.

    With `engine_connection` (a run's DuckDB connection), a DuckDB store is attached to it
    so the run's rows move in without leaving the database.
    """
    if spec.startswith(POSTGRES_SCHEMES):
        from retainer.state.postgres_backend import PostgresBackend
        return Store(PostgresBackend(spec))
    from retainer.state.duckdb_backend import AttachedDuckDBBackend, DuckDBBackend
    path = _duckdb_path(spec, root)
    if engine_connection is not None:
        return Store(AttachedDuckDBBackend(path, engine_connection))
    return Store(DuckDBBackend(path))


def _duckdb_path(spec: str, root: Path) -> Path:
    path = Path(spec).expanduser()
    return path if path.is_absolute() else root / path


__all__ = ["Store", "open_store", "store_exists"]
