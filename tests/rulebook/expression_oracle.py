"""DuckDB as the oracle for the expression-language properties.

The original text, evaluated by DuckDB's own parser, is compared with the SQL that
parse → bind → sqlglot produced, over one row of a table `r` whose columns `a`, `b`
(numbers), `t` (text), `ts` (timestamp) and `flag` (boolean) are the names in scope.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import sqlglot
from sqlglot import exp

from retainer.rulebook.expressions import Binding, Bound, Type, bind, parse

COLUMN_TYPES: dict[str, Type] = {
    "a": "number", "b": "number", "t": "text", "ts": "timestamp", "flag": "boolean",
}
COLUMN_SQL = {"a": "INTEGER", "b": "DOUBLE", "t": "VARCHAR", "ts": "TIMESTAMP",
              "flag": "BOOLEAN"}


class RowScope:
    """Binds `a`, `b`, `t`, `ts`, `flag` (bare or as `r.<name>`) to the columns of table `r`."""

    def lookup(self, qualifier: str, name: str) -> Binding | None:
        if qualifier not in ("", "r") or name not in COLUMN_TYPES:
            return None
        return Binding(exp.column(name, table="r"), COLUMN_TYPES[name], f"column:r.{name}")

    def candidates(self, qualifier: str) -> Iterable[str]:
        return sorted(COLUMN_TYPES) if qualifier in ("", "r") else []

    def describe(self) -> str:
        return "the test row r"


SCOPE = RowScope()
DEFAULT_AS_OF = datetime(2024, 6, 1, 12, 0, 0)


def as_of_sql(as_of: datetime = DEFAULT_AS_OF) -> Callable[[], exp.Expr]:
    """The `as_of` callable `bind` wants: a TIMESTAMP literal, like the compiler's."""
    literal = as_of.isoformat(sep=" ")
    return lambda: exp.cast(exp.Literal.string(literal), "TIMESTAMP")


def bind_text(text: str, as_of: datetime = DEFAULT_AS_OF) -> Bound:
    return bind(parse(text), SCOPE, text, as_of_sql(as_of))


@functools.cache
def connection() -> duckdb.DuckDBPyConnection:
    return duckdb.connect()


@dataclass(frozen=True)
class Row:
    a: int | None
    b: float | None
    t: str | None
    ts: datetime | None
    flag: bool | None


def load(row: Row) -> duckdb.DuckDBPyConnection:
    """(Re)create `r` holding exactly `row`."""
    con = connection()
    columns = ", ".join(f"{name} {kind}" for name, kind in COLUMN_SQL.items())
    con.execute(f"CREATE OR REPLACE TABLE r ({columns})")
    con.execute("INSERT INTO r VALUES (?, ?, ?, ?, ?)", [row.a, row.b, row.t, row.ts, row.flag])
    return con


@dataclass(frozen=True)
class Outcome:
    """What DuckDB made of one SELECT: a value, or the kind of error it raised."""

    value: Any = None
    error: str | None = None


def _normal(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return value


def evaluate(con: duckdb.DuckDBPyConnection, sql: str) -> Outcome:
    try:
        rows = con.execute(f"SELECT {sql} FROM r").fetchall()
    except duckdb.Error as error:
        return Outcome(error=type(error).__name__)
    assert len(rows) == 1, rows
    return Outcome(_normal(rows[0][0]))


def renders_as_one_select(tree: exp.Expr) -> None:
    """Accepted SQL, put in a SELECT, must stay exactly that one SELECT for DuckDB too."""
    sql = f"SELECT {tree.sql('duckdb')} FROM r"
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error:
        return  # DuckDB cannot parse it at all: an error at run time, never a second statement
    assert [s.type for s in statements] == [duckdb.StatementType.SELECT], sql
    try:
        reparsed = sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.ParseError:
        # e.g. `@` is accepted as `ABS()`: broken, but a single SELECT (see
        # test_malformed_input_is_refused)
        return
    assert len(list(reparsed.find_all(exp.Select))) == 1, sql
