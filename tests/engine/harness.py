"""Run a rulebook over literal rows on an engine and return the published rows by id.

The behaviour suite is written against this one function so that every engine runs the same
cases; DuckDB's answers are the reference.
"""

from __future__ import annotations

import textwrap
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlglot import exp

from retainer.compile.plan import compile_plan
from retainer.engines.duckdb import DuckDBEngine
from retainer.rulebook.loader import load_project

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


def evaluate(tmp_path: Path, rulebook: str, given: Rows, as_of: datetime,
             level: str = "account") -> dict[str, dict[str, Any]]:
    root = tmp_path / "behaviour"
    root.mkdir(exist_ok=True)
    (root / "retainer.yml").write_text(textwrap.dedent(SOURCES).lstrip() +
                                       textwrap.dedent(rulebook), encoding="utf-8")
    loaded = load_project(root)
    engine = DuckDBEngine()
    try:
        catalog = engine.attach_rows(loaded, given)
        plan = compile_plan(loaded, catalog, as_of, as_of)
        engine.execute(plan)
        engine.publish(plan, {})
        cursor = engine.connection.execute(
            exp.select(exp.Star()).from_(f"{level}_results").sql("duckdb"))
        names = [d[0] for d in cursor.description]
        return {str(row[0]): dict(zip(names, row, strict=True)) for row in cursor.fetchall()}
    finally:
        engine.close()
