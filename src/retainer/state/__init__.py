"""The state store: runs, membership history with reasons, health per run.

A DuckDB file by default; a PostgreSQL database when `state:` is a `postgresql://` URL. Both
backends take the same statements (sqlglot trees rendered in their dialect) and the same
migrations.
"""

from __future__ import annotations

from pathlib import Path

from retainer.state.store import Store


def open_store(spec: str, root: Path) -> Store:
    """Open (creating and migrating as needed) the store named by `state:` in retainer.yml."""
    if spec.startswith(("postgresql://", "postgres://")):
        from retainer.state.postgres_backend import PostgresBackend
        return Store(PostgresBackend(spec))
    from retainer.state.duckdb_backend import DuckDBBackend
    path = Path(spec).expanduser()
    return Store(DuckDBBackend(path if path.is_absolute() else root / path))


__all__ = ["Store", "open_store"]
