"""The Spark engine (PySpark, local mode): the demo project gives DuckDB's answers.

Skipped when pyspark or Java is missing on a developer's machine; mandatory in CI (`CI` set).
One SparkSession serves the whole module (starting the JVM takes seconds); every engine works
in its own `newSession()` of it.
"""

from __future__ import annotations

import importlib.util
import math
import os
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from sqlglot import exp

from retainer.engines import ENGINES
from retainer.project import Project
from retainer.rulebook.loader import load_project
from retainer.scaffold import create_demo_project

AS_OF = datetime(2026, 12, 1)
# Doubles (health, averages) may differ in the last bits: Spark sums partial aggregates of
# its partitions in another order than DuckDB does. Anything beyond 1e-9 relative is a bug.
REL_TOLERANCE = 1e-9


def _missing() -> str | None:
    if importlib.util.find_spec("pyspark") is None:
        return "pyspark is not installed: pip install 'retainer[spark]'"
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "Java is not installed: Spark needs Java 17 or later (set JAVA_HOME)"
    return None


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    reason = _missing()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"the Spark engine tests are mandatory in CI: {reason}")
        pytest.skip(reason)
    from pyspark.sql import SparkSession
    session = (SparkSession.builder.master("local[2]").appName("retainer-tests")
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.sql.shuffle.partitions", "4")
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false").getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    # Until src/retainer/engines/__init__.py registers the engine itself.
    monkeypatch.setitem(ENGINES, "spark", "retainer.engines.spark:SparkEngine")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("spark") / "duckdb"
    create_demo_project(root, accounts=200, seed=3, end=AS_OF)
    return root


def _results(root: Path, name: str) -> pa.Table:
    engine = Project(root).results()
    try:
        table: pa.Table = engine.arrow(exp.select(exp.Star()).from_(name))
        return table
    finally:
        engine.close()


def _same(expected: object, actual: object) -> bool:
    if isinstance(expected, float) and isinstance(actual, float):
        return math.isclose(expected, actual, rel_tol=REL_TOLERANCE, abs_tol=REL_TOLERANCE)
    return expected == actual


def test_the_demo_gives_duckdbs_results(spark: Any, registered: None, demo: Path) -> None:
    del spark, registered
    on_spark = demo.parent / "spark"
    shutil.copytree(demo, on_spark)
    settings = on_spark / "retainer.yml"
    text = settings.read_text(encoding="utf-8")
    assert "engine: duckdb" in text
    settings.write_text(text.replace("engine: duckdb", 'engine: spark\nspark: {master: '
                                     '"local[2]"}'), encoding="utf-8")
    Project(demo).run(AS_OF)
    Project(on_spark).run(AS_OF)
    for output in ("account_results", "contact_results"):
        expected, actual = _results(demo, output), _results(on_spark, output)
        assert actual.schema == expected.schema, output
        assert actual.num_rows == expected.num_rows > 0, output
        key = expected.column_names[0]
        by_key = {row[key]: row for row in actual.to_pylist()}
        differences = [(row[key], column, value, by_key[row[key]][column])
                       for row in expected.to_pylist() for column, value in row.items()
                       if not _same(value, by_key[row[key]][column])]
        assert differences == [], f"{output}: {differences[:10]}"


def test_sources_get_the_compilers_type_names(spark: Any, tmp_path: Path) -> None:
    from retainer.engines.spark import SparkEngine
    root = tmp_path / "types"
    create_demo_project(root, accounts=20, seed=1, end=AS_OF)
    engine = SparkEngine(session=spark)
    try:
        catalog = engine.attach_sources(load_project(root))
    finally:
        engine.close()
    assert catalog.type_of("events", "ts") == "timestamp"
    assert catalog.type_of("accounts", "account_id") == "text"
    assert catalog.engine_type("accounts", "seats_purchased") == "BIGINT"  # as DuckDB reads CSV


def test_fixture_rows_and_previous_state_round_trip(spark: Any, tmp_path: Path) -> None:
    from retainer.engines.spark import SparkEngine
    root = tmp_path / "rows"
    root.mkdir()
    (root / "retainer.yml").write_text(
        "name: rows\nsources:\n  accounts: {kind: accounts, from: data/accounts.csv, "
        "key: account_id, time: created_at}\n", encoding="utf-8")
    engine = SparkEngine(session=spark)
    try:
        catalog = engine.attach_rows(load_project(root), {"accounts": [
            {"account_id": "a1", "created_at": datetime(2026, 1, 2, 3, 4, 5), "seats": 3}]})
        assert (catalog.type_of("accounts", "created_at"),
                catalog.type_of("accounts", "seats")) == ("timestamp", "number")
        engine.load_previous_state(pa.table({
            "level": ["account"], "entity_id": ["a1"], "dimension": ["lifecycle"],
            "segment": ["new"], "entered_at": pa.array([datetime(2026, 1, 2, 3, 4, 5)])}))
        rows = engine._arrow(engine.spark.table("previous_state"))
        assert rows.to_pylist()[0]["entered_at"] == datetime(2026, 1, 2, 3, 4, 5)
        read = engine._arrow(engine.spark.table("src_accounts")).to_pylist()
        assert read == [{"account_id": "a1", "created_at": datetime(2026, 1, 2, 3, 4, 5),
                         "seats": 3}]
    finally:
        engine.close()
    assert spark.sql("SELECT 1 AS one").collect()[0][0] == 1  # the session passed in lives on
