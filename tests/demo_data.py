"""Facts about a demo project read straight from its data files, as oracles for the tests."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb


def accounts_at(root: Path, as_of: datetime) -> int:
    """The accounts a run at `as_of` covers: those created by then (a later one did not exist
    yet), counted in the project's accounts file."""
    path = str(root / "data" / "accounts.csv").replace("'", "''")
    with duckdb.connect() as db:
        row = db.execute(f"SELECT count(*) FROM read_csv('{path}') WHERE created_at <= ?",
                         [as_of]).fetchone()
    assert row is not None
    return int(row[0])
