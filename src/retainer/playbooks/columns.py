"""The columns a run will publish, with their types, known before any run: what `when`,
templates and fields of playbooks are checked against by `retainer validate`.

The compiled plan is bound, never executed, in an in-memory DuckDB: each source becomes an
empty table with the catalog's columns, and each step an empty table with the columns
DuckDB says its query gives — one step deep at a time, so it takes milliseconds. Where
that cannot be done (types only another engine knows) the names come from the plan,
untyped.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from retainer.compile.catalog import Catalog
from retainer.compile.plan import Plan
from retainer.compile.sql import category
from retainer.compile.staging import src
from retainer.errors import RetainerError
from retainer.rulebook.expressions import Type

LEVEL_TABLES = {"account": "account_results", "contact": "contact_results"}


def result_columns(plan: Plan, catalog: Catalog) -> dict[str, dict[str, Type]]:
    """{level: {column: type}} of the results a run of `plan` publishes."""
    import duckdb
    try:
        return _described(plan, catalog)
    except (duckdb.Error, sqlglot.errors.SqlglotError, RetainerError):
        return _named(plan)


def _described(plan: Plan, catalog: Catalog) -> dict[str, dict[str, Type]]:
    from retainer.engines.duckdb import DuckDBEngine
    engine = DuckDBEngine()
    connection = engine.connection

    def empty(name: str, columns: list[tuple[str, str]]) -> None:
        definition = exp.Schema(this=exp.to_table(name), expressions=[
            exp.ColumnDef(this=exp.to_identifier(column, quoted=True),
                          kind=exp.DataType.build(kind, dialect="duckdb"))
            for column, kind in columns])
        connection.execute(exp.Create(this=definition, kind="TABLE", properties=exp.Properties(
            expressions=[exp.TemporaryProperty()])).sql("duckdb"))

    def described(query: exp.Query) -> list[tuple[str, str]]:
        rows = connection.execute("DESCRIBE " + query.sql("duckdb")).fetchall()
        return [(str(r[0]), str(r[1])) for r in rows]

    try:
        for name, columns in catalog.columns.items():
            empty(src(name), list(columns.items()))
        engine.load_previous_state()
        for step in plan.work():
            empty(step.name, described(step.query))
        return {level: {c: category(t) for c, t in described(step.query)}
                for step in plan.outputs() for level, table in LEVEL_TABLES.items()
                if step.name == table}
    finally:
        engine.close()


def _named(plan: Plan) -> dict[str, dict[str, Type]]:
    found: dict[str, dict[str, Type]] = {}
    for step in plan.outputs():
        for level, table in LEVEL_TABLES.items():
            if step.name == table and isinstance(step.query, exp.Select):
                found[level] = {e.alias_or_name: "unknown" for e in step.query.selects}
    return found
