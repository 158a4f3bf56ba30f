"""Run a rulebook over literal rows on an engine and return the staged rows by id.

The behaviour suite is written against this one function so that every engine runs the same
cases; DuckDB's answers are the reference. The `target` fixture runs each test once per engine
in ENGINES; the PostgreSQL run uses a fresh schema (see `postgres_url` in tests/conftest.py) and
is skipped, like every server test, when no server is reachable outside CI.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from retainer.compile.plan import compile_plan
from retainer.engines import create_engine
from retainer.engines.base import Engine
from retainer.engines.duckdb import DuckDBEngine
from retainer.project import DIALECT_OF_ENGINE
from retainer.rulebook.loader import load_project
from retainer.state.postgres_backend import split_schema

ENGINES = ("duckdb", "postgres", "spark")
SOURCES = """
name: behaviour
sources:
  accounts: {kind: accounts, from: data/accounts.csv, key: account_id, time: created_at}
  contacts: {kind: contacts, from: data/contacts.csv, key: contact_id, account: account_id, role: role}
  identities: {kind: identities, from: data/ids.csv, alias: source_id, account: account_id}
  events: {from: data/events.csv, account: account_id, contact: user_id, time: ts}
  surveys: {kind: surveys, from: data/surveys.csv, contact: contact_id, time: answered_at}
"""
Rows = dict[str, list[dict[str, Any]]]


@dataclass(frozen=True)
class Target:
    """The engine a behaviour case runs on, and where its project lives."""

    engine: str
    directory: Path
    postgres_url: str | None = None

    def settings(self) -> str:
        """The retainer.yml lines that select the engine."""
        if self.engine == "duckdb":
            return ""
        if self.engine == "spark":
            return 'engine: spark\nspark: {master: "local[2]"}\n'
        assert self.postgres_url is not None
        url, schema = split_schema(self.postgres_url)
        return f"engine: postgres\npostgres: {{url: '{url}', schema: {schema}}}\n"


@pytest.fixture(scope="session")
def spark_session() -> Iterator[Any]:
    """One local Spark session for every Spark case (a JVM start per case would take
    minutes); the engine reuses the active session. Skipped without PySpark or Java, except
    under CI, where both are part of the machine."""
    try:
        from pyspark.sql import SparkSession

        session = (SparkSession.builder.master("local[2]").appName("retainer-behaviour")
                   .config("spark.sql.session.timeZone", "UTC")
                   .config("spark.sql.shuffle.partitions", "4")
                   .config("spark.ui.enabled", "false").getOrCreate())
    except Exception as exc:  # ImportError, or the JVM failing to start
        if os.environ.get("CI"):
            raise
        pytest.skip(f"Spark is not available here ({exc}); pip install 'retainer[spark]' "
                    "and a Java 17 runtime")
    yield session
    session.stop()


@pytest.fixture(params=ENGINES)
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    if request.param == "spark":
        request.getfixturevalue("spark_session")
    return Target(request.param, tmp_path, url)


def evaluate(target: Target, rulebook: str, given: Rows, as_of: datetime,
             level: str = "account", output: str | None = None,
             sources: str = SOURCES) -> dict[str, dict[str, Any]]:
    """The rows of `<level>_results` (or of another output) by their first column."""
    root = target.directory / "behaviour"
    root.mkdir(exist_ok=True)
    (root / "retainer.yml").write_text(textwrap.dedent(sources).lstrip() + target.settings() +
                                       textwrap.dedent(rulebook), encoding="utf-8")
    loaded = load_project(root)
    engine: Engine = DuckDBEngine() if target.engine == "duckdb" else create_engine(loaded)
    try:
        catalog = engine.attach_rows(loaded, given)
        plan = compile_plan(loaded, catalog, as_of, as_of, DIALECT_OF_ENGINE[target.engine])
        engine.execute(plan)
        engine.stage_outputs(plan)
        rows = engine.staged_arrow(output or f"{level}_results").to_pylist()
    finally:
        engine.close()
    return {str(next(iter(row.values()))): row for row in rows}
