"""The state store: runs, membership history with reasons, health per run.

A DuckDB file by default; a PostgreSQL database when `state:` is a `postgresql://` URL. Both
backends take the same statements (sqlglot trees rendered in their dialect) and the same
migrations.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from retainer.state.store import Store


def open_store(spec: str, root: Path, engine_connection: Any = None) -> Store:
    """Open (creating and migrating as needed) the store named by `state:` in retainer.yml.

    With `engine_connection` (a run's DuckDB connection), a DuckDB store is attached to it
    so the run's rows move in without leaving the database.
    """
    if spec.startswith(("postgresql://", "postgres://")):
        from retainer.state.postgres_backend import PostgresBackend
        return Store(PostgresBackend(spec))
    from retainer.state.duckdb_backend import AttachedDuckDBBackend, DuckDBBackend
    path = Path(spec).expanduser()
    path = path if path.is_absolute() else root / path
    if engine_connection is not None:
        return Store(AttachedDuckDBBackend(path, engine_connection))
    return Store(DuckDBBackend(path))


__all__ = ["Store", "open_store"]
