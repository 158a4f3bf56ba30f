"""The hand-written baseline: `handwritten.sql`, one DuckDB statement over the source files."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from string import Template

import duckdb

SQL_FILE = Path(__file__).with_name("handwritten.sql")


def statement(data_dir: Path, as_of: datetime) -> str:
    """The statement with its placeholders filled in (data directory, as_of literal)."""
    literal = f"TIMESTAMP '{as_of:%Y-%m-%d %H:%M:%S}'"
    path = str(data_dir.resolve()).replace("'", "''")
    return Template(SQL_FILE.read_text()).substitute(data=path, as_of=literal)


def run(data_dir: Path, as_of: datetime, database: Path | None = None
        ) -> duckdb.DuckDBPyConnection:
    """Compute `hand_results` into `database` (a fresh DuckDB file; in memory when None), as a
    scheduled job would keep its results; the caller closes it.

    The session time zone is UTC, as in Retainer's engine; thread settings are DuckDB's
    defaults in both.
    """
    connection = duckdb.connect(str(database) if database else ":memory:")
    connection.execute("SET TimeZone = 'UTC'")
    connection.execute(statement(data_dir, as_of))
    return connection


def save(connection: duckdb.DuckDBPyConnection, accounts: Path, contacts: Path) -> None:
    """Write the account rows and the unnested contact rows to Parquet for the comparison."""
    connection.execute(
        f"COPY (SELECT * EXCLUDE (contacts) FROM hand_results) TO '{accounts}' (FORMAT PARQUET)"
    )
    connection.execute(
        f"COPY (SELECT account_id, unnest(contacts, recursive := true) FROM hand_results) "
        f"TO '{contacts}' (FORMAT PARQUET)"
    )
