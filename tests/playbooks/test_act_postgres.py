"""`retainer act` on the PostgreSQL engine, every source a table of the database: the
addresses come from the contacts table and the consent gate from the consents table as they
are at the moment of dispatch, to the microsecond, and each decision is logged."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from sqlglot import exp

from retainer.engines.duckdb import DuckDBEngine
from retainer.engines.postgres import PostgresEngine
from retainer.project import Project
from retainer.rulebook.models import PostgresSettings
from retainer.state.postgres_backend import split_schema
from tests.consent.test_gate import MESSAGES  # the gate's playbook, here on PostgreSQL tables
from tests.playbooks.conftest import Writer, act_on, decision_rows, ledger_rows

PROJECT = """
name: acts
engine: postgres
postgres: {{url: "{dsn}", schema: {schema}, source_schema: {schema}}}
output: {{include: [name, owner]}}
sources:
  accounts: {{kind: accounts, table: crm_accounts, key: account_id, time: created_at}}
  contacts: {{kind: contacts, table: crm_contacts, key: contact_id, account: account_id, role: role, email: email}}
  events: {{table: product_events, account: account_id, time: ts}}
  consents: {{kind: consents, table: consent_events, contact: contact_id, time: recorded_at}}
"""
# The tables of tests/playbooks/conftest.py's project; consents are recorded with a zone.
TABLES = {
    "crm_accounts": ("account_id TEXT, name TEXT, owner TEXT, created_at TIMESTAMP", [
        ("a1", "Acme", "ana@us.example", datetime(2026, 1, 1)),
        ("a2", "Globex", "ben@us.example", datetime(2026, 1, 1)),
        ("a3", "Initech", "ana@us.example", datetime(2026, 1, 12))]),
    "crm_contacts": ("contact_id TEXT, account_id TEXT, role TEXT, email TEXT, country TEXT", [
        ("c1", "a1", "practitioner", "c1@acme.example", "DE"),
        ("c2", "a1", "executive", "c2@acme.example", "US"),
        ("c3", "a2", "practitioner", "c3@globex.example", "US"),
        ("c4", "a3", "practitioner", "c4@initech.example", "FR")]),
    "product_events": ("account_id TEXT, ts TIMESTAMP, name TEXT", [
        ("a1", datetime(2026, 1, 15, 10), "login")]),
    "consent_events": ("contact_id TEXT, purpose TEXT, channel TEXT, status TEXT, "
                       "legal_basis TEXT, jurisdiction TEXT, recorded_at TIMESTAMPTZ, "
                       "source TEXT", [
        ("c3", "marketing", "email", "denied", "consent", "US-NY",
         datetime(2025, 12, 1, tzinfo=UTC), "preference_center"),
        ("c4", "marketing", "email", "granted", "consent", "FR",
         datetime(2026, 1, 10, tzinfo=UTC), "signup_form")]),
}


@pytest.fixture
def database(postgres_url: str) -> Iterator[psycopg.Connection[Any]]:
    """The test schema with the source tables filled; the fixture drops the schema."""
    dsn, schema = split_schema(postgres_url)
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(str(schema))))
        connection.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(str(schema))))
        for table, (columns, rows) in TABLES.items():
            connection.execute(sql.SQL("CREATE TABLE {} ({})").format(
                sql.Identifier(table), sql.SQL(columns)))
            insert(connection, table, rows)
        yield connection


def insert(connection: psycopg.Connection[Any], table: str, rows: list[tuple[Any, ...]]
           ) -> None:
    with connection.cursor() as cursor:
        cursor.executemany(sql.SQL("INSERT INTO {} VALUES ({})").format(
            sql.Identifier(table), sql.SQL(", ").join(sql.Placeholder() * len(rows[0]))), rows)


def sent_to(root: Path) -> dict[str, list[str]]:
    """The addresses each occurrence's messages went to, from the files destination."""
    path = root / "outbox" / "messages.csv"
    sent: dict[str, list[str]] = {}
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            sent.setdefault(row["occurrence"][:10], []).append(
                json.loads(row["contact"])["email"])
    return {day: sorted(addresses) for day, addresses in sent.items()}


def test_act_on_postgres_tables_reads_addresses_and_consents_at_dispatch(
        make_project: Writer, postgres_url: str,
        database: psycopg.Connection[Any]) -> None:
    dsn, schema = split_schema(postgres_url)
    project = PROJECT.format(dsn=dsn, schema=schema)
    root = make_project(MESSAGES, project=project)
    # After the run, before the act: c4 has a new address, which is the one used.
    database.execute("UPDATE crm_contacts SET email = 'c4@initech.example.new' "
                     "WHERE contact_id = 'c4'")
    report = act_on(root)
    assert report.ok
    assert {r["contact_id"]: r["status"] for r in ledger_rows(root)} == {
        "c1": "suppressed", "c2": "sent", "c3": "suppressed", "c4": "sent"}
    assert sent_to(root) == {"2026-01-16": ["c2@acme.example", "c4@initech.example.new"]}
    reasons = {d["contact_id"]: (d["outcome"], d["reason"], d["jurisdiction"])
               for d in decision_rows(root)}
    assert reasons == {
        "c1": ("suppressed", "EU marketing is opt-in and no consent is recorded", "DE"),
        "c2": ("sent", "US marketing is opt-out: no objection recorded", "US"),
        "c3": ("suppressed", "denied 2025-12-01 via preference_center", "US-NY"),
        "c4": ("sent", "granted 2026-01-10 via signup_form (consent)", "FR"),
    }

    Project(root).run(datetime(2026, 1, 18))
    # After the next run, before its act: c4 withdraws, recorded with Paris's offset.
    paris = datetime(2026, 1, 18, 10, 0, 0, 250_000, tzinfo=timezone(timedelta(hours=1)))
    insert(database, "consent_events", [("c4", "marketing", "email", "withdrawn", "consent",
                                         "FR", paris, "preference_center")])
    moment = datetime(2026, 1, 18, 9, 0, 0, 250_000)    # the same instant, naive UTC
    before = act_on(root, dry_run=True, clock=lambda: moment - timedelta(microseconds=1))
    assert {before.consent[i.key] for i in before.plan.firing() if i.contact_id == "c4"} == {
        "allowed: granted 2026-01-10 via signup_form (consent)"}
    assert act_on(root, clock=lambda: moment).ok
    assert {r["contact_id"]: r["status"] for r in ledger_rows(root, "as_of = '2026-01-18'")
            } == {"c1": "suppressed", "c2": "sent", "c3": "suppressed", "c4": "suppressed"}
    [c4] = [d for d in decision_rows(root) if d["act_id"] == 2 and d["contact_id"] == "c4"]
    assert (c4["outcome"], c4["reason"], c4["decided_at"]) == (
        "suppressed", "withdrawn 2026-01-18 via preference_center", moment)
    assert (c4["consent_status"], c4["consent_recorded_at"], c4["consent_source"]) == (
        "withdrawn", moment, "preference_center")
    assert sent_to(root) == {"2026-01-16": ["c2@acme.example", "c4@initech.example.new"],
                             "2026-01-18": ["c2@acme.example"]}


def test_a_query_gives_duckdbs_values_on_postgres(postgres_url: str) -> None:
    # Text with a `%` (only text to the driver), a list parameter, times with and without
    # a zone, and a sum PostgreSQL computes as NUMERIC: the same tree gives the same Python
    # values, of the same types, on both engines.
    ids = exp.select(exp.alias_(exp.cast(exp.Literal.string("c1"), "VARCHAR"), "id")).union(
        exp.select(exp.cast(exp.Literal.string("c2"), "VARCHAR")), distinct=False)
    query = exp.select(
        exp.column("id"), exp.cast(exp.Literal.string("100% sure"), "VARCHAR"),
        exp.cast(exp.Literal.string("2026-01-18 09:00:00.25"), "TIMESTAMP"),
        exp.cast(exp.Literal.string("2026-01-18 10:00:00.25+01:00"), "TIMESTAMPTZ"),
        exp.Sum(this=exp.cast(exp.Literal.number(3), "BIGINT")),
    ).from_(ids.subquery("w")).where(
        exp.EQ(this=exp.column("id"), expression=exp.Any(this=exp.paren(exp.Placeholder()))),
    ).group_by(exp.column("id"))
    dsn, schema = split_schema(postgres_url)
    postgres = PostgresEngine(PostgresSettings(url=dsn, schema=str(schema)))
    duck = DuckDBEngine()
    try:
        rows, expected = (e.query(query, [["c2", "c3"]]) for e in (postgres, duck))
    finally:
        postgres.close()
        duck.close()
    assert rows == expected == [("c2", "100% sure", datetime(2026, 1, 18, 9, 0, 0, 250_000),
                                 datetime(2026, 1, 18, 9, 0, 0, 250_000, tzinfo=UTC), 3)]
    assert [type(v) for v in rows[0]] == [type(v) for v in expected[0]] == [
        str, str, datetime, datetime, int]


def test_placeholders_are_bound_in_the_order_they_are_written(postgres_url: str) -> None:
    # The CTE is added to the tree after the WHERE, yet written first: its `?` takes the
    # first value on both engines. A `$1` inside a literal is only text.
    query = exp.select(exp.column("v"), exp.cast(exp.Literal.string("costs $1"), "VARCHAR")
                       ).from_("c").where(
        exp.cast(exp.Placeholder(), "VARCHAR").eq(exp.Literal.string("keep"))).with_(
        "c", as_=exp.select(exp.alias_(exp.cast(exp.Placeholder(), "VARCHAR"), "v")))
    dsn, schema = split_schema(postgres_url)
    postgres = PostgresEngine(PostgresSettings(url=dsn, schema=str(schema)))
    duck = DuckDBEngine()
    try:
        rows, expected = (e.query(query, ["X", "keep"]) for e in (postgres, duck))
    finally:
        postgres.close()
        duck.close()
    assert rows == expected == [("X", "costs $1")]
