"""The PostgreSQL engine end to end: the demo project gives DuckDB's results, runs again, keeps
its results in the database, reads tables of the database, and explains what goes wrong."""

from __future__ import annotations

import math
import re
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest
from psycopg import sql
from ruamel.yaml import YAML

from retainer.engines.postgres import PostgresEngine
from retainer.errors import DataError, RetainerError
from retainer.project import Project
from retainer.rulebook.loader import SECTIONS
from retainer.rulebook.models import PostgresSettings, ProjectConfig
from retainer.scaffold import create_demo_project
from retainer.state.postgres_backend import split_schema

# Floats may differ in their last bits, never more: sums and averages of doubles add in an
# order each engine chooses, and floating-point addition is not associative (the error is
# about n·2⁻⁵³ for n rows). Health is rounded the same way on both (see compile/sql.py), so
# 1e-9 relative is ~10⁷ times that error and still far finer than any rule's threshold.
FLOAT_TOLERANCE = 1e-9
AS_OF = (datetime(2026, 11, 15), datetime(2026, 12, 1))


def use_postgres(root: Path, url: str, *, source_schema: bool = False) -> None:
    """Point a project at the test schema of the local server."""
    dsn, schema = split_schema(url)
    settings = f"engine: postgres\npostgres: {{url: '{dsn}', schema: {schema}"
    settings += f", source_schema: {schema}}}\n" if source_schema else "}\n"
    config = root / "retainer.yml"
    text = re.sub(r"^engine: duckdb\n", "", config.read_text(encoding="utf-8"), flags=re.M)
    config.write_text(settings + text, encoding="utf-8")


def published(root: Path, table: str) -> tuple[list[tuple[str, str]], list[tuple[Any, ...]]]:
    """Column names and types, and the rows by key, of a table of a project's results."""
    with duckdb.connect(str(root / ".retainer" / "output.duckdb"), read_only=True) as db:
        columns = [(str(r[0]), str(r[1])) for r in db.execute(f"DESCRIBE {table}").fetchall()]
        rows = db.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
    return columns, rows


def assert_same(reference: Path, other: Path, table: str) -> int:
    """Every column of `table` equal: exact, floats within FLOAT_TOLERANCE. Returns rows."""
    columns, expected = published(reference, table)
    other_columns, actual = published(other, table)
    assert other_columns == columns
    assert len(actual) == len(expected)
    for want, got in zip(expected, actual, strict=True):
        for (name, kind), a, b in zip(columns, want, got, strict=True):
            if kind in ("DOUBLE", "FLOAT") and a is not None and b is not None:
                assert math.isclose(a, b, rel_tol=FLOAT_TOLERANCE), (table, want[0], name)
            else:
                assert a == b, (table, want[0], name, a, b)
    return len(expected)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo") / "acme"
    create_demo_project(root, accounts=200, seed=3, end=datetime(2026, 12, 1))
    return root


@pytest.fixture
def connection(postgres_url: str) -> Iterator[psycopg.Connection[Any]]:
    dsn, schema = split_schema(postgres_url)
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
            sql.Identifier(str(schema))))
        connection.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(str(schema))))
        yield connection


def test_the_demo_gives_duckdbs_results_on_postgres_run_after_run(
        demo: Path, tmp_path: Path, postgres_url: str,
        connection: psycopg.Connection[Any]) -> None:
    on_duckdb, on_postgres = tmp_path / "duckdb", tmp_path / "postgres"
    shutil.copytree(demo, on_duckdb)
    shutil.copytree(demo, on_postgres)
    use_postgres(on_postgres, postgres_url)
    # Two runs each: the second reads the first's stages from history (lifecycle is a state
    # machine) and replaces every relation of the first in the Postgres schema.
    for as_of in AS_OF:
        reports = [Project(root).run(as_of) for root in (on_duckdb, on_postgres)]
        assert reports[0].dimensions == reports[1].dimensions
        assert reports[0].quality == reports[1].quality
        # Accounts created after as_of are not part of that run.
        existing = duckdb.sql(f"SELECT count(*) FROM '{demo}/data/accounts.csv' "
                              f"WHERE created_at <= '{as_of}'").fetchall()[0][0]
        assert 150 < existing < 200 if as_of < AS_OF[-1] else existing == 200
        assert assert_same(on_duckdb, on_postgres, "account_results") == existing
        assert assert_same(on_duckdb, on_postgres, "contact_results") > 1000
        assert_same(on_duckdb, on_postgres, "data_quality")
        # A view of the results built by someone survives the next run.
        connection.execute("CREATE OR REPLACE VIEW green AS SELECT account_id, as_of FROM "
                           "account_results WHERE health_band = 'green'")
    # The results are also tables of the Postgres schema, for people to query there.
    for table in ("account_results", "contact_results", "data_quality"):
        count = connection.execute(sql.SQL("SELECT count(*) FROM {}").format(
            sql.Identifier(table))).fetchone()
        assert count is not None and count[0] == len(published(on_duckdb, table)[1])
    as_of = connection.execute("SELECT DISTINCT as_of FROM green").fetchall()
    assert as_of == [(AS_OF[-1],)]


TINY = """
name: tiny
sources:
  accounts: {kind: accounts, TABLE_OR_FILE_accounts, key: account_id, time: created_at}
  events: {TABLE_OR_FILE_events, account: account_id, time: ts}
traits:
  logins_30d: {count: events, where: "name = 'login'", window: 30d}
  last_name: {latest: name, from: events}
segments:
  activity:
    - active: "logins_30d >= 2"
    - quiet: else
"""
ACCOUNTS = "account_id,label,created_at\na1,Acme,2026-01-01 00:00:00\na2,globex,2026-06-01 00:00:00\n"
EVENTS = ("account_id,ts,name\na1,2026-11-29 10:00:00,login\na1,2026-11-29 10:00:00,Login\n"
          "a1,2026-11-20 10:00:00,login\na2,2026-12-02 00:00:00,login\n,2026-11-01 00:00:00,"
          "login\n")


def tiny(root: Path, sources: str) -> Path:
    (root / "data").mkdir(parents=True)
    (root / "data" / "accounts.csv").write_text(ACCOUNTS, encoding="utf-8")
    (root / "data" / "events.csv").write_text(EVENTS, encoding="utf-8")
    text = TINY
    for name in ("accounts", "events"):
        text = text.replace(f"TABLE_OR_FILE_{name}", sources.format(name=name))
    (root / "retainer.yml").write_text(text.lstrip(), encoding="utf-8")
    return root


def test_table_sources_are_read_where_they_are(tmp_path: Path, postgres_url: str,
                                               connection: psycopg.Connection[Any]) -> None:
    connection.execute("CREATE TABLE accounts (account_id text, label text, created_at "
                       "timestamptz)")
    # Names in a collation where 'Login' sorts after 'login' (where the server has one).
    icu = connection.execute("SELECT 1 FROM pg_collation WHERE collname = 'en-x-icu'").fetchall()
    collation = sql.SQL(' COLLATE "en-x-icu"' if icu else "")
    connection.execute(sql.SQL("CREATE TABLE raw_events (account_id text, ts text, name text{})"
                               ).format(collation))
    for table, text in (("accounts", ACCOUNTS), ("raw_events", EVENTS)):
        with connection.cursor().copy(sql.SQL("COPY {} FROM STDIN (FORMAT csv, HEADER true)")
                                      .format(sql.Identifier(table))) as copy:
            copy.write(text)
    connection.execute("CREATE VIEW events AS SELECT * FROM raw_events")
    files = tiny(tmp_path / "files", "from: data/{name}.csv")
    tables = tiny(tmp_path / "tables", "table: {name}")
    use_postgres(tables, postgres_url, source_schema=True)
    as_of = datetime(2026, 12, 1)
    Project(files).run(as_of)
    report = Project(tables).run(as_of)
    assert assert_same(files, tables, "account_results") == 2
    assert_same(files, tables, "data_quality")
    # Text is compared byte by byte as on DuckDB: 'login' wins the tie with 'Login'.
    assert published(tables, "account_results")[1][0][2:4] == ("login", "active")
    assert {q.source: q.after_as_of for q in report.quality}["events"] == 1


def test_a_missing_table_is_named_with_the_tables_that_exist(
        tmp_path: Path, postgres_url: str, connection: psycopg.Connection[Any]) -> None:
    connection.execute("CREATE TABLE accounts (account_id text, created_at timestamp)")
    connection.execute("CREATE TABLE event_log (account_id text, ts timestamp)")
    root = tiny(tmp_path / "p", "table: {name}")
    use_postgres(root, postgres_url, source_schema=True)
    with pytest.raises(DataError) as caught:
        Project(root).run(datetime(2026, 12, 1))
    problem = caught.value.problem
    assert re.search(r"source 'events': table events does not exist in schema \S+",
                     problem.message)
    assert problem.hint is not None and "accounts, event_log" in problem.hint
    assert problem.location is not None and problem.location.file.name == "retainer.yml"


def test_a_value_postgres_cannot_store_names_the_source(tmp_path: Path,
                                                        postgres_url: str) -> None:
    root = tiny(tmp_path / "p", "from: data/{name}.csv")
    (root / "data" / "accounts.csv").write_text(
        "account_id,label,created_at\na1,Ac\x00me,2026-01-01 00:00:00\n", encoding="utf-8")
    use_postgres(root, postgres_url)
    with pytest.raises(DataError, match=r"PostgreSQL cannot store a value of source "
                                        r"'accounts' \(data/accounts.csv\): .*0x00.* \(row 1\)"
                       ) as caught:
        Project(root).run(datetime(2026, 12, 1))
    assert caught.value.problem.hint is not None
    assert "NUL" in caught.value.problem.hint


def test_an_unreachable_server_says_where_it_looked(tmp_path: Path) -> None:
    root = tiny(tmp_path / "p", "from: data/{name}.csv")
    use_postgres(root, "postgresql://postgres@127.0.0.1:9/test?schema=nowhere")
    with pytest.raises(RetainerError, match=re.escape("cannot connect to PostgreSQL at 127.0.0.1:9/test")
                       ) as caught:
        Project(root).run(datetime(2026, 12, 1))
    assert "postgres.url" in str(caught.value.problem.hint)


def test_one_run_per_schema_at_a_time(postgres_url: str) -> None:
    dsn, schema = split_schema(postgres_url)
    settings = PostgresSettings(url=dsn, schema=str(schema))
    first = PostgresEngine(settings)
    try:
        with pytest.raises(RetainerError, match="is in use by another Retainer run"):
            PostgresEngine(settings)
    finally:
        first.close()
    PostgresEngine(settings).close()


def test_the_documented_settings_are_valid() -> None:
    document = (Path(__file__).parents[2] / "docs" / "engines.md").read_text(encoding="utf-8")
    body = re.findall(r"```yaml\n(.*?)```", document, re.DOTALL)[0]
    settings = YAML(typ="safe").load(body)
    config = ProjectConfig.model_validate({k: v for k, v in settings.items()
                                           if k not in SECTIONS})
    assert config.engine == "postgres" and config.postgres is not None
    assert (config.postgres.schema_, config.postgres.source_schema) == ("retainer", "analytics")


def test_new_result_columns_replace_the_table_unless_something_reads_it(
        tmp_path: Path, postgres_url: str, connection: psycopg.Connection[Any]) -> None:
    root = tiny(tmp_path / "p", "from: data/{name}.csv")
    use_postgres(root, postgres_url)
    as_of = datetime(2026, 12, 1)
    Project(root).run(as_of)
    connection.execute("CREATE VIEW mine AS SELECT account_id FROM account_results")
    config = root / "retainer.yml"
    config.write_text(config.read_text(encoding="utf-8").replace(
        "traits:\n", "traits:\n  events_ever: {count: events}\n"), encoding="utf-8")
    with pytest.raises(RetainerError, match="other objects depend on it") as caught:
        Project(root).run(as_of)
    assert "drop it, run again" in str(caught.value.problem.hint)
    connection.execute("DROP VIEW mine")
    Project(root).run(as_of)
    columns = connection.execute("SELECT column_name FROM information_schema.columns WHERE "
                                 "table_name = 'account_results' AND table_schema = "
                                 "current_schema()").fetchall()
    assert ("events_ever",) in columns
