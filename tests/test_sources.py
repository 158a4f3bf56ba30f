"""Sources come from CSV, Parquet, JSON files or tables of a DuckDB database."""

from __future__ import annotations

import json
from datetime import datetime

import duckdb
import pytest

from retainer.errors import DataError
from retainer.project import Project
from tests.conftest import ProjectWriter

AS_OF = datetime(2026, 12, 1)
RULEBOOK = {"main.yml": """
    traits:
      logins: {count: events, window: 30d}
      execs: {count: contacts, where: "role = 'executive'"}
    """}


def test_json_parquet_and_database_tables(write_project: ProjectWriter) -> None:
    root = write_project(project="""
        name: mixed
        database: warehouse.duckdb
        sources:
          accounts: {kind: accounts, from: data/accounts.jsonl, key: account_id}
          contacts: {kind: contacts, from: data/contacts.parquet, key: contact_id, account: account_id, role: role}
          events: {table: product_events, account: account_id, time: ts}
        """, rulebook=RULEBOOK)
    with (root / "data/accounts.jsonl").open("w") as handle:
        for account in ("a1", "a2"):
            handle.write(json.dumps({"account_id": account, "name": account.upper()}) + "\n")
    duckdb.sql("SELECT * FROM (VALUES ('c1', 'a1', 'executive'), ('c2', 'a2', 'manager')) "
               "t(contact_id, account_id, role)").write_parquet(
        str(root / "data/contacts.parquet"))
    with duckdb.connect(str(root / "warehouse.duckdb")) as db:
        db.execute("CREATE TABLE product_events AS SELECT * FROM (VALUES "
                   "('a1', TIMESTAMP '2026-11-20 10:00:00'), "
                   "('a1', TIMESTAMP '2026-11-21 10:00:00')) t(account_id, ts)")
    report = Project(root).run(AS_OF)
    with duckdb.connect(str(root / ".retainer/output.duckdb"), read_only=True) as db:
        rows = db.sql("SELECT account_id, logins, execs FROM account_results ORDER BY 1"
                      ).fetchall()
    assert rows == [("a1", 2, 1), ("a2", 0, 0)]
    assert {q.source: q.rows_read for q in report.quality}["events"] == 2


def test_numeric_ids_match_text_ids(write_project: ProjectWriter) -> None:
    root = write_project(project="""
        name: numeric
        sources:
          accounts: {kind: accounts, from: data/accounts.csv, key: account_id}
          events: {from: data/events.csv, account: account_id, time: ts}
        """, rulebook={"main.yml": "traits:\n  logins: {count: events}\n"}, data={
        "accounts.csv": "account_id,name\n7,Seven\n8,Eight\n",
        "events.csv": "account_id,ts\n7,2026-11-20\n7,2026-11-21\n8,2026-11-21\n"})
    Project(root).run(AS_OF)
    with duckdb.connect(str(root / ".retainer/output.duckdb"), read_only=True) as db:
        assert db.sql("SELECT account_id, logins FROM account_results ORDER BY 1").fetchall() \
            == [("7", 2), ("8", 1)]


def test_table_source_without_database_is_explained(write_project: ProjectWriter) -> None:
    root = write_project(project="""
        name: nodb
        sources:
          accounts: {kind: accounts, table: accounts, key: account_id}
        """)
    with pytest.raises(DataError) as caught:
        Project(root).plan(AS_OF)
    assert "names no database" in caught.value.problem.message
    assert "add 'database:" in (caught.value.problem.hint or "")


def test_unknown_file_extension_asks_for_a_format(write_project: ProjectWriter) -> None:
    root = write_project(project="""
        name: odd
        sources:
          accounts: {kind: accounts, from: data/accounts.dat, key: account_id}
        """, data={"accounts.dat": "account_id\na1\n"})
    with pytest.raises(DataError) as caught:
        Project(root).plan(AS_OF)
    assert "add format: csv | parquet | json" in caught.value.problem.message
