"""Fixtures of the state store tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(params=["duckdb", "postgres"])
def spec(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a store lives: a DuckDB file, or a schema of the PostgreSQL test database."""
    if request.param == "duckdb":
        return str(tmp_path / "state.duckdb")
    url: str = request.getfixturevalue("postgres_url")
    return url
