"""Property-based tests of the rulebook expression language (`retainer.rulebook.expressions`).

The expression language is the one place where text written by users becomes SQL that runs on
their data, so its contract is checked against generated input rather than a few examples:

* `parse` and `bind` raise `ExpressionError` and nothing else, whatever the text;
* anything hostile (subqueries, statements, windows, aggregates, unknown functions, `*`, …) is
  refused, and whatever *is* accepted renders as one plain SELECT expression;
* well-typed expressions bind, their SQL runs in DuckDB and means what the text meant;
* badly typed expressions are refused before any SQL runs;
* `clauses` splits a condition without changing what it means.

DuckDB is the oracle: the original text, evaluated by DuckDB's own parser, is compared with the
SQL that parse → bind → sqlglot produced, over one generated row of a table `r`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import pytest
import sqlglot
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from sqlglot import exp

from retainer.rulebook.expressions import (
    Binding,
    Bound,
    ExpressionError,
    Type,
    as_condition,
    bind,
    clause_texts,
    clauses,
    parse,
)

FAST = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
MEDIUM = settings(max_examples=100, deadline=None,
                  suppress_health_check=[HealthCheck.too_slow])
FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

# --- the test scope and the one-row table `r` --------------------------------------------------

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


rows = st.builds(
    Row,
    a=st.none() | st.integers(-1000, 1000),
    b=st.none() | st.integers(-3, 3).map(float)
    | st.floats(-1000, 1000, allow_nan=False, allow_infinity=False),
    t=st.none() | st.text(alphabet="abAB xy'%_", max_size=6),
    ts=st.none() | st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2026, 12, 31)),
    flag=st.none() | st.booleans(),
)

# --- generators of well-typed expression text ----------------------------------------------------

# Timestamp literals are written to the second, so generated values have no microseconds.
timestamp_values = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2026, 12, 31)
                                ).map(lambda d: d.replace(microsecond=0))


def quote(value: str) -> str:
    """A SQL string literal for `value` (single quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


def _binary(ops: list[str]) -> Callable[[st.SearchStrategy[str]], st.SearchStrategy[str]]:
    def build(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.builds(lambda x, op, y: f"{x} {op} {y}", inner, st.sampled_from(ops), inner)
    return build


number_leaves = st.one_of(
    st.sampled_from(["a", "b", "r.a", "r.b"]),
    st.integers(-50, 50).map(str),
    st.sampled_from(["0.5", "2.25", "1e2"]),
)
text_leaves = st.one_of(st.sampled_from(["t", "r.t"]),
                        st.text(alphabet="abAB xy'%_", max_size=4).map(quote))
timestamp_exprs = st.one_of(
    st.just("ts"),
    timestamp_values.map(lambda d: f"date '{d:%Y-%m-%d}'"),
    timestamp_values.map(lambda d: f"cast('{d:%Y-%m-%d %H:%M:%S}' as timestamp)"),
    st.builds(lambda n, unit, op: f"ts {op} interval {n} {unit}",
              st.integers(0, 400), st.sampled_from(["day", "hour"]), st.sampled_from("+-")),
)


def _text_extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds(lambda f, x: f"{f}({x})", st.sampled_from(["lower", "upper", "trim"]), inner),
        st.builds(lambda x, y: f"{x} || {y}", inner, inner),
        st.builds(lambda x, y: f"coalesce({x}, {y})", inner, inner),
        inner.map(lambda x: f"({x})"),
    )


text_exprs = st.recursive(text_leaves, _text_extend, max_leaves=4)


def _simple_conditions(numbers: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """One comparison or test, without and/or/not."""
    comparison = st.sampled_from(["=", "<>", "!=", "<", "<=", ">", ">="])
    return st.one_of(
        st.builds(lambda x, op, y: f"{x} {op} {y}", numbers, comparison, numbers),
        st.builds(lambda x, op, y: f"{x} {op} {y}", text_exprs, comparison, text_exprs),
        st.builds(lambda x, op, y: f"{x} {op} {y}", timestamp_exprs, comparison,
                  timestamp_exprs),
        st.builds(lambda op, d: f"ts {op} '{d:%Y-%m-%d}'", comparison, timestamp_values),
        st.builds(lambda d, op: f"'{d:%Y-%m-%d %H:%M:%S}' {op} ts", timestamp_values, comparison),
        st.builds(lambda x, neg, lo, hi: f"{x} {neg}between {lo} and {hi}",
                  numbers, st.sampled_from(["", "not "]), numbers, numbers),
        st.builds(lambda x, neg, items: f"{x} {neg}in ({', '.join(items)})",
                  numbers, st.sampled_from(["", "not "]), st.lists(numbers, min_size=1,
                                                                  max_size=3)),
        st.builds(lambda x, neg, op, pattern: f"{x} {neg}{op} {pattern}",
                  text_exprs, st.sampled_from(["", "not "]), st.sampled_from(["like", "ilike"]),
                  st.text(alphabet="abAB%_", max_size=4).map(quote) | text_exprs),
        st.builds(lambda f, x, y: f"{f}({x}, {y})", st.sampled_from(["contains", "starts_with"]),
                  text_exprs, text_exprs),
        st.builds(lambda x, test: f"{x} is {test}",
                  st.sampled_from(["a", "b", "t", "ts", "flag"]),
                  st.sampled_from(["null", "not null"])),
        st.sampled_from(["flag", "r.flag", "flag = true", "flag <> false", "flag is true",
                         "true", "false"]),
    )


def _number_extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    simple = _simple_conditions(number_leaves)
    return st.one_of(
        _binary(["+", "-", "*", "/"])(inner),
        inner.map(lambda x: f"({x})"),
        inner.map(lambda x: f"-({x})"),
        st.builds(lambda f, x: f"{f}({x})", st.sampled_from(["abs", "floor", "ceil"]), inner),
        st.builds(lambda x: f"round({x}, 1)", inner),
        st.builds(lambda f, x, y: f"{f}({x}, {y})",
                  st.sampled_from(["coalesce", "nullif", "least", "greatest"]), inner, inner),
        st.builds(lambda c, x, y: f"case when {c} then {x} else {y} end", simple, inner, inner),
        st.builds(lambda c, x, y: f"if({c}, {x}, {y})", simple, inner, inner),
        st.builds(lambda x, v, y, z: f"case {x} when {v} then {y} else {z} end",
                  inner, number_leaves, inner, inner),
        st.builds(lambda x, kind: f"cast({x} as {kind})", inner,
                  st.sampled_from(["double", "decimal(18, 3)", "bigint"])),
    )


number_exprs = st.recursive(number_leaves, _number_extend, max_leaves=6)


def _condition_extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        _binary(["and", "or", "AND", "OR"])(inner),
        inner.map(lambda x: f"not {x}"),
        inner.map(lambda x: f"not ({x})"),
        inner.map(lambda x: f"({x})"),
    )


conditions = st.recursive(_simple_conditions(number_exprs), _condition_extend, max_leaves=5)
typed_exprs: st.SearchStrategy[tuple[str, Type]] = st.one_of(
    conditions.map(lambda text: (text, "boolean")),
    number_exprs.map(lambda text: (text, "number")),
    text_exprs.map(lambda text: (text, "text")),
)

# --- 1. parse and bind never raise anything but ExpressionError ---------------------------------

SQLISH_TOKENS = [
    # statements and clauses
    "SELECT", "select", "DROP", "TABLE", "UNION", "ALL", "INSERT", "INTO", "VALUES", "FROM",
    "WHERE", "WITH", "DELETE", "UPDATE", "SET", "ATTACH", "COPY", "PRAGMA", "INSTALL", "LOAD",
    "CALL", "EXPLAIN", "LIMIT", "ORDER", "BY", "OVER", "PARTITION", "EXISTS", "DISTINCT",
    # expression keywords
    "and", "or", "not", "is", "null", "true", "false", "in", "between", "like", "ilike", "case",
    "when", "then", "else", "end", "cast", "as", "int", "varchar", "date", "timestamp",
    "interval", "day", "escape", "collate",
    # punctuation and comments
    ";", "--", "/*", "*/", "'", "''", '"', "`", "(", ")", "[", "]", "{", "}", ",", ".", "::",
    ":", "=", "==", "<>", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/", "//", "%", "||", "^",
    "**", "~", "&", "|", "?", "$1", "$$", "@", "\\", "\n", "\t", "->", "->>", ":=", "=>",
    # functions, allowed and not
    "sum", "count", "avg", "row_number", "lower", "upper", "coalesce", "ratio", "days_between",
    "days_since", "abs", "round", "if", "read_csv", "getenv", "now", "current_date", "exists",
    "lambda", "struct_pack", "list_transform", "unnest",
    # names
    "a", "b", "t", "ts", "flag", "r", "r.a", "a.b.c", "zzz", "_", "e",
    # literals
    "1", "0", "-1", "2.5", "1e309", "0x1F", "1_000", "99999999999999999999999999999999999999",
    "'x'", "'it''s'", "'\\'", "E'\\x'", "x'00'", "date '2024-01-01'",
]
sqlish_text = st.lists(
    st.one_of(st.sampled_from(SQLISH_TOKENS), st.text(max_size=3),
              st.integers().map(str)),
    max_size=14,
).flatmap(lambda tokens: st.lists(st.sampled_from(["", " ", "\n"]),
                                  min_size=len(tokens), max_size=len(tokens))
          .map(lambda seps: "".join(s + t for s, t in zip(seps, tokens, strict=True))))


def _renders_as_one_select(tree: exp.Expr) -> None:
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
        return  # e.g. `@` is accepted as `ABS()`: broken, but a single SELECT (see below)
    assert len(list(reparsed.find_all(exp.Select))) == 1, sql


def _parse_and_bind(text: str) -> None:
    try:
        tree = parse(text)
    except ExpressionError as error:
        assert 0 <= error.offset <= len(text), (text, error.offset)
        assert error.message
        return
    _renders_as_one_select(tree)
    try:
        bound = bind(tree, SCOPE, text, as_of_sql())
    except ExpressionError as error:
        assert 0 <= error.offset <= len(text), (text, error.offset)
        return
    _renders_as_one_select(bound.tree)


@FUZZ
@given(st.text(max_size=40))
def test_parse_and_bind_raise_only_expression_error_on_any_text(text: str) -> None:
    """Whatever a user types, `parse`/`bind` answer with a tree or an ExpressionError.

    Anything else (a sqlglot exception, a KeyError in the checker …) would surface as a
    traceback instead of a located problem in the rulebook. The offset must point into the text.
    """
    _parse_and_bind(text)


@FUZZ
@given(sqlish_text)
@example("1 -- */ ; select 42; /*")
@example("a > 1 /* nested /* */ drop table r; */")
@example("'x\\' or 1=1 --'")
def test_parse_and_bind_raise_only_expression_error_on_sql_like_text(text: str) -> None:
    """The same contract for text made of SQL keywords, quotes, comments and operators, which
    reaches far deeper into sqlglot's parser than random characters; and whatever is accepted
    renders as exactly one SELECT (no comment or quote trick smuggles in a second statement)."""
    _parse_and_bind(text)


# --- 2. hostile input is refused ---------------------------------------------------------------

HOSTILE_VALUES = [
    "(select 1)", "(select max(a) from r)", "(select * from r)", "sum(a)", "count(*)",
    "avg(b)", "row_number() over ()", "sum(a) over (partition by t)", "foo(a)",
    "read_csv('/etc/passwd')", "getenv('HOME')", "current_setting('x')", "a.b.c", "r.a.b",
    "*", "r.*", "lower(*)", "$1", "?", "[1, 2]", "{'k': 1}", "a[1]", "unnest([1])",
    "(with q as (select 1) select * from q)", "exists(select 1)", "query('select 1')",
]
HOSTILE_STATEMENTS = [
    "; drop table r", "; select 1", "; insert into r values (1)", " union select 1",
    " union all select a from r", "; attach 'x.db'", "; copy r to 'x.csv'", "; pragma version",
    ") or (1 = 1", "; --", " from r", " limit 1",
]
HOSTILE_WHOLE = [
    "drop table x", "insert into r values (1)", "delete from r", "update r set a = 1",
    "select 1", "(select 1)", "x in (select 1)", "exists(select 1)", "row_number() over ()",
    "sum(x)", "unknown_fn(1)", "*", "a.b.c", "x; drop table y", "create table x (a int)",
    "t = 'x\\'; drop table r; --'", "t = 'x'; drop table r; --'", "pragma version",
    "attach 'x.db'", "call pragma_version()",
]


@pytest.mark.parametrize("text", HOSTILE_WHOLE)
def test_hostile_examples_are_refused(text: str) -> None:
    """The classic attacks, one by one: each is refused with a located ExpressionError."""
    with pytest.raises(ExpressionError) as caught:
        parse(text)
    assert 0 <= caught.value.offset <= len(text)


@MEDIUM
@given(conditions, number_exprs, st.sampled_from(HOSTILE_VALUES), st.sampled_from([
    "{c} and {h} > 0",
    "{h} = {n} or {c}",
    "({c}) and coalesce({h}, 0) > {n}",
    "not ({c}) or abs({h}) < 1",
    "case when {c} then {h} else {n} end > 0",
    "{n} in ({h}, 1) and {c}",
    "{n} between {h} and 5 or {c}",
    "{c} and {n} in (select {h})",
    "{c} or exists(select {h})",
]))
def test_hostile_fragments_embedded_in_valid_conditions_are_refused(
        c: str, n: str, h: str, template: str) -> None:
    """A valid condition does not launder a hostile value placed anywhere inside or next to it:
    subqueries, aggregates, windows, unknown functions, `*`, placeholders, three-part names …"""
    text = template.format(c=c, n=n, h=h)
    with pytest.raises(ExpressionError) as caught:
        parse(text)
    assert 0 <= caught.value.offset <= len(text)


@MEDIUM
@given(conditions, st.sampled_from(HOSTILE_STATEMENTS), st.booleans())
def test_hostile_statements_around_valid_conditions_are_refused(
        c: str, fragment: str, before: bool) -> None:
    """A second statement (`; drop …`), a UNION, or clause syntax is refused whether it follows
    the condition or comes first."""
    text = f"{fragment.lstrip('; ')}; {c}" if before else f"{c}{fragment}"
    with pytest.raises(ExpressionError):
        parse(text)


def _without_comments(tree: exp.Expr) -> str:
    return tree.sql("duckdb", comments=False)


@MEDIUM
@given(conditions, st.lists(st.sampled_from(
    [*"ab;*/-'\"() ", "drop table r", "select 1", "*/", "/*", "--"]), max_size=8).map("".join),
    st.sampled_from(["--", "/*"]))
@example("a > 1", "; drop", "--")
@example("a > 1", "*/ ; drop table r; /*", "/*")
def test_comments_are_inert(c: str, comment: str, style: str) -> None:
    """Comment tricks (`a > 1 -- ; drop`) do not change the expression: either the text is
    refused, or it means exactly what the condition without the comment means, and the rendered
    SQL (sqlglot keeps comments) is still a single SELECT.

    Note: comments are accepted (not refused); what matters is that they stay comments.
    """
    text = f"{c} -- {comment}" if style == "--" else f"{c} /* {comment} */"
    try:
        tree = parse(text)
    except ExpressionError as error:
        assert 0 <= error.offset <= len(text)
        return
    # A `*/` (or a nested `/*`) inside a block comment ends it early or not at all: the rest is
    # then the user's own code, so only the one-SELECT guarantee applies.
    _renders_as_one_select(tree)
    if style == "--" or not {"*/", "/*"} & {comment[i:i + 2] for i in range(len(comment))}:
        assert _without_comments(tree) == _without_comments(parse(c))
        _renders_as_one_select(bind_text(text).tree)


@MEDIUM
@given(st.text(max_size=12).filter(lambda s: "\x00" not in s))
@example("x' or 1=1 --")
@example("x\\' or 1=1 --")
@example("'; drop table r; --")
@example("\\")
def test_text_literals_round_trip_exactly(value: str) -> None:
    """Any text, correctly quoted, stays one literal with exactly that value all the way to
    DuckDB: quote and backslash tricks inside a string cannot escape it."""
    text = f"t = {quote(value)}"
    tree = parse(text)
    assert isinstance(tree, exp.EQ)
    literal = tree.expression
    assert isinstance(literal, exp.Literal) and literal.is_string
    assert literal.this == value
    bound = bind_text(text)
    assert isinstance(bound.tree, exp.EQ)
    rendered = bound.tree.expression.sql("duckdb")
    assert connection().execute(f"SELECT {rendered}").fetchone() == (value,)


# --- 3. valid expressions bind, run, and mean what the text means --------------------------------


@FUZZ
@given(typed_exprs, rows)
def test_valid_expressions_bind_run_and_agree_with_duckdb(typed: tuple[str, Type],
                                                          row: Row) -> None:
    """A well-typed expression over `a, b` (numbers), `t` (text), `ts` (timestamp) and `flag`
    (boolean) parses, binds with the expected type, and its bound SQL runs in DuckDB and gives
    exactly what DuckDB makes of the original text over the same row (NULLs included; integer
    overflow, the one legitimate run-time error, must happen on both sides alike).

    This checks the whole pipeline: sqlglot's reading of precedence, name replacement, and SQL
    generation must not change meaning.
    """
    text, expected_type = typed
    bound = bind_text(text)
    assert bound.type == expected_type, (text, bound.type)
    if expected_type == "boolean":
        as_condition(bound, text)
    assert all(ref.startswith("column:r.") for ref in bound.refs)
    con = load(row)
    original = evaluate(con, text)
    compiled = evaluate(con, bound.tree.sql("duckdb"))
    assert compiled == original, (text, bound.tree.sql("duckdb"), row)
    # The only run-time failure a well-typed expression may have is integer overflow.
    assert compiled.error in (None, "OutOfRangeException"), (text, compiled)


def _python_ratio(x: Any, y: Any) -> float | None:
    if x is None or y is None or y == 0:
        return None
    return float(x) / float(y)


simple_numbers = st.one_of(st.sampled_from(["a", "b"]), st.integers(-5, 5).map(str))


def _check_ratio(numerator: str, denominator: str, row: Row) -> None:
    con = load(row)
    text = f"ratio({numerator}, {denominator})"
    bound = bind_text(text)
    assert bound.type == "number"
    parts = con.execute(f"SELECT {numerator}, {denominator} FROM r").fetchone()
    assert parts is not None
    expected = _python_ratio(*parts)
    got = evaluate(con, bound.tree.sql("duckdb"))
    assert got.error is None, (text, bound.tree.sql("duckdb"), got)
    if expected is None:
        assert got.value is None, (text, row, got)
    elif math.isnan(expected):  # e.g. ratio(b, b / b) with b = 0: 0 / NaN
        assert got.value == "NaN", (text, row, got)
    else:
        assert got.value is not None and math.isclose(got.value, expected, rel_tol=1e-12), (
            text, bound.tree.sql("duckdb"), row, got, expected)


compound_numbers = st.builds(lambda x, op, y: f"{x} {op} {y}", simple_numbers,
                             st.sampled_from(["+", "-", "*", "/"]), simple_numbers)
ratio_args = st.one_of(simple_numbers, compound_numbers, compound_numbers.map(lambda x: f"({x})"))


@MEDIUM
@given(ratio_args, ratio_args, rows)
@example("a", "b", Row(10, 0.0, None, None, None))
@example("a", "b - 2", Row(10, 5.0, None, None, None))
@example("a", "b - 2", Row(10, 0.0, None, None, None))
@example("a + 1", "b / 2", Row(10, 4.0, None, None, None))
def test_ratio_is_division_or_null(numerator: str, denominator: str, row: Row) -> None:
    """`ratio(x, y)` is x / y as a decimal, and NULL (never an error, never inf) when y is 0 or
    NULL; compound arguments keep their meaning (`ratio(a, b - 2)` is a / (b - 2), not
    a / b - 2 as commit 2daaa73 rendered it)."""
    _check_ratio(numerator, denominator, row)


timestamp_args = st.one_of(
    st.just(("ts", None)),  # filled from the row
    timestamp_values.map(lambda d: (f"'{d:%Y-%m-%d %H:%M:%S}'", d)),
    timestamp_values.map(lambda d: (f"date '{d:%Y-%m-%d}'", datetime(d.year, d.month, d.day))),
)


def _days(start: datetime | None, end: datetime | None) -> int | None:
    if start is None or end is None:
        return None
    return (end.date() - start.date()).days


@MEDIUM
@given(timestamp_args, timestamp_args, rows, timestamp_values)
def test_days_between_and_days_since_count_calendar_days(
        first: tuple[str, datetime | None], second: tuple[str, datetime | None], row: Row,
        as_of: datetime) -> None:
    """`days_between(x, y)` is the number of calendar days from x's date to y's date (time of
    day ignored, negative when y is earlier); `days_since(x)` is `days_between(x, as_of)`."""
    con = load(row)
    x_sql, x_value = first
    y_sql, y_value = second
    x = row.ts if x_sql == "ts" else x_value
    y = row.ts if y_sql == "ts" else y_value
    between = bind_text(f"days_between({x_sql}, {y_sql})", as_of)
    since = bind_text(f"days_since({x_sql})", as_of)
    assert between.type == since.type == "number"
    assert evaluate(con, between.tree.sql("duckdb")) == Outcome(_days(x, y))
    assert evaluate(con, since.tree.sql("duckdb")) == Outcome(_days(x, as_of))


# --- 4. type errors and unknown names ------------------------------------------------------------

non_literal_texts = st.one_of(st.sampled_from(["t", "r.t"]),
                              text_leaves.map(lambda x: f"lower({x})"),
                              st.builds(lambda x: f"t || {x}", text_leaves))
typed_strategies: dict[Type, st.SearchStrategy[str]] = {
    "number": number_exprs,
    "text": non_literal_texts,
    "timestamp": timestamp_exprs,
    "boolean": _simple_conditions(number_leaves),
}
type_pairs = st.sampled_from([(x, y) for x in typed_strategies for y in typed_strategies
                              if x != y])


@MEDIUM
@given(type_pairs.flatmap(lambda pair: st.tuples(typed_strategies[pair[0]],
                                                 typed_strategies[pair[1]])),
       st.sampled_from(["=", "<>", "<", ">=", "in", "between"]))
@example(("a", "'x'"), "=")
@example(("'x'", "a"), "=")
def test_comparing_different_types_is_refused(pair: tuple[str, str], op: str) -> None:
    """Comparing a number, a text, a timestamp and a condition with one another is a type error,
    caught by `bind` before any SQL runs (`a = 'x'`, `flag = 1`, `ts > 5`, `t > ts` …).

    Text *literals* may be compared with timestamps (`ts > '2024-01-01'`), so text here is never
    a bare literal except in the explicit `a = 'x'` examples.
    """
    x, y = pair
    if op == "in":
        text = f"({x}) in (({y}))"
    elif op == "between":
        text = f"({x}) between ({y}) and ({y})"
    else:
        text = f"({x}) {op} ({y})"
    with pytest.raises(ExpressionError) as caught:
        bind_text(text)
    assert 0 <= caught.value.offset <= len(text)
    assert "compares a" in caught.value.message


@MEDIUM
@given(st.one_of(typed_strategies["text"], typed_strategies["timestamp"],
                 typed_strategies["boolean"]),
       number_exprs, st.sampled_from(["+", "-", "*", "/", "%"]), st.booleans())
@example("t", "1", "+", False)
def test_arithmetic_on_non_numbers_is_refused(other: str, number: str, op: str,
                                              flip: bool) -> None:
    """Arithmetic needs numbers: `t + 1`, `flag * a`, `ts * 2` are refused. (A timestamp plus
    or minus an *interval* is fine, but a number is not an interval.)"""
    text = f"({number}) {op} ({other})" if flip else f"({other}) {op} ({number})"
    with pytest.raises(ExpressionError) as caught:
        bind_text(text)
    assert "arithmetic" in caught.value.message


@MEDIUM
@given(st.one_of(number_exprs, typed_strategies["text"], typed_strategies["timestamp"]),
       conditions, st.sampled_from(["{v} and {c}", "{c} or {v}", "not ({v})",
                                    "case when {v} then 1 else 0 end = 1",
                                    "if({v}, 1, 0) = 1", "{v}"]))
@example("a", "flag", "{v} and {c}")
def test_non_conditions_used_as_conditions_are_refused(value: str, c: str,
                                                       template: str) -> None:
    """A number, text or timestamp is not a condition: `a and flag`, `not t`, `case when a …`
    and a bare `a` as a whole condition are refused with a hint to compare it."""
    text = template.format(v=f"({value})", c=c)
    with pytest.raises(ExpressionError) as caught:
        as_condition(bind_text(text), text)
    assert "not a condition" in caught.value.message
    assert caught.value.hint


def _typos(name: str) -> st.SearchStrategy[str]:
    """Names one inserted character away from `name`."""
    return st.builds(lambda i, ch: name[:i] + ch + name[i:], st.integers(0, len(name)),
                     st.sampled_from("abcdefghijklmnopqrstuvwxyz_0123456789"))


@MEDIUM
@given(st.sampled_from(sorted(COLUMN_TYPES)).flatmap(
    lambda name: st.tuples(st.just(name), _typos(name))))
@example(("a", "aa"))
@example(("flag", "flg"))
@example(("ts", "tss"))
def test_unknown_names_suggest_the_close_one(pair: tuple[str, str]) -> None:
    """A misspelt name is refused with "did you mean '<name>'?" pointing at the name that is in
    scope, and the error offset points at the misspelt name in the text."""
    name, typo = pair
    assume(typo not in COLUMN_TYPES and not typo[0].isdigit())
    text = f"{typo} is null and a > 0"
    try:
        tree = parse(text)
    except ExpressionError:
        assume(False)  # the typo spelt a keyword (`as`, `is`, `or` …)
        raise
    with pytest.raises(ExpressionError) as caught:
        bind(tree, SCOPE, text, as_of_sql())
    assert caught.value.message.startswith(f"unknown name '{typo}'")
    assert caught.value.hint is not None and f"'{name}'" in caught.value.hint
    assert caught.value.hint.startswith("did you mean")
    assert caught.value.offset == 0


# --- 5. clauses ----------------------------------------------------------------------------------


def _as_clause(condition: str) -> str:
    """Parenthesize a generated condition if it is itself an and/or, so it stays one clause."""
    return f"({condition})" if isinstance(parse(condition), exp.Connector) else condition


@FAST
@given(st.lists(conditions, min_size=2, max_size=5), st.sampled_from(["and", "or"]), rows)
def test_clauses_split_chains_without_changing_meaning(parts: list[str], joiner: str,
                                                       row: Row) -> None:
    """`clauses` on `c1 and … and cn` returns ("all", n clauses), on `c1 or … or cn`
    ("any", n clauses); each clause means what its ci means, and the clauses joined again with
    the same connective mean what the original text means (checked in DuckDB)."""
    pieces = [_as_clause(p) for p in parts]
    text = f" {joiner} ".join(pieces)
    kind, found = clauses(parse(text))
    assert kind == ("all" if joiner == "and" else "any")
    assert len(found) == len(parts), (text, [f.sql() for f in found])
    con = load(row)
    for piece, clause in zip(pieces, found, strict=True):
        assert evaluate(con, clause.sql("duckdb")) == evaluate(con, piece), (piece, clause.sql())
    rejoined = f" {joiner.upper()} ".join(f"({clause.sql('duckdb')})" for clause in found)
    assert evaluate(con, rejoined) == evaluate(con, text), (text, rejoined)


@FAST
@given(st.lists(conditions, min_size=2, max_size=5), st.sampled_from(["and", "or"]), rows)
@example(["a between 1 and 2", "flag"], "and", Row(1, None, None, None, None))
@example(["case when a > 1 and b > 1 then true else false end", "a not between 1 and 2"],
         "and", Row(1, None, None, None, None))
def test_clause_texts_are_the_users_own_clauses(parts: list[str], joiner: str,
                                               row: Row) -> None:
    """`clause_texts` cuts the original text at the top-level connectives `clauses` found: the
    pieces are exactly the conditions that were joined (skipping the AND of BETWEEN, and
    connectives inside parentheses or CASE), so each piece means what its clause means."""
    pieces = [_as_clause(p) for p in parts]
    text = f" {joiner} ".join(pieces)
    kind, found = clauses(parse(text))
    texts = clause_texts(text, kind, len(found))
    assert texts == pieces, (text, texts)
    con = load(row)
    for piece, clause in zip(pieces, found, strict=True):
        assert evaluate(con, piece) == evaluate(con, clause.sql("duckdb"))


@FAST
@given(conditions)
def test_a_single_condition_is_one_clause(condition: str) -> None:
    """Anything that is not a top-level and/or chain is one "all" clause."""
    tree = parse(condition)
    node = tree.unnest()
    assume(not isinstance(node, exp.Connector))
    kind, found = clauses(tree)
    assert (kind, len(found)) == ("all", 1)
    assert found[0] == node


# --- regressions: gaps the properties above found -----------------------------------------------
# Each of these failed on commit 56a14b1 and was fixed in c5f0a16; they pin the fixed behaviour.


@pytest.mark.parametrize("text", ["t like zzz", "t ilike zzz", "a is zzz",
                                  "ts - interval (zzz) day > ts"])
def test_names_everywhere_are_validated(text: str) -> None:
    """An unknown name is refused wherever it appears: once, the pattern of LIKE/ILIKE, the
    right side of IS and an INTERVAL's amount were never checked."""
    with pytest.raises(ExpressionError, match="unknown name 'zzz'"):
        bind_text(text)


@MEDIUM
@given(st.sampled_from(["t like t", "t ilike lower(t) || '%'", "t not like coalesce(t, 'x')",
                        "ts - interval (a) day <= ts", "ts + interval (abs(a)) hour >= ts"]),
       rows)
def test_names_everywhere_are_bound(text: str, row: Row) -> None:
    """Every name becomes its compiled column (`t like t` once rendered as `r.t LIKE t`), and
    the result runs in DuckDB with the meaning of the original text."""
    bound = bind_text(text)
    assert not [c for c in bound.tree.find_all(exp.Column) if c.table != "r"], bound.tree.sql()
    con = load(row)
    compiled = evaluate(con, bound.tree.sql("duckdb"))
    assert compiled.error is None and compiled == evaluate(con, text), (text, compiled)


def test_simple_case_is_accepted() -> None:
    """`case a when 1 then 10 else 0 end` (the simple CASE form) has a number result; its WHEN
    values were once type-checked as conditions, and a value of the wrong type is refused."""
    assert bind_text("case a when 1 then 10 else 0 end").type == "number"
    with pytest.raises(ExpressionError, match="compares a number with a text"):
        bind_text("case a when 'x' then 10 else 0 end")


@pytest.mark.parametrize("text", ["cast(ts as timestamp) <= ts", "ts::timestamp <= ts",
                                  "timestamp '2024-01-01' < ts", "cast(a as decimal) > 0",
                                  "cast(a as numeric) > 0", "cast(a as decimal(10, 2)) > 0"])
def test_casts_promised_by_the_hint_are_accepted(text: str) -> None:
    """The refusal hint says "cast to int, bigint, double, decimal, varchar, boolean, date or
    timestamp"; sqlglot reads TIMESTAMP as TIMESTAMPNTZ and DECIMAL with type parameters, which
    the allow-list once refused."""
    assert bind_text(text).type == "boolean"


@pytest.mark.parametrize("text", ["@ > 1", "a > @", "a in ()", "@"])
def test_malformed_input_is_refused(text: str) -> None:
    """Input sqlglot turns into a malformed tree (`@` → `ABS()` with no argument, an empty IN)
    is refused by `parse`, not left to fail in the engine."""
    with pytest.raises(ExpressionError) as caught:
        parse(text)
    assert 0 <= caught.value.offset <= len(text)


@pytest.mark.parametrize("text", ["r.5 > 1", "account.5 > 0", "r2.5", "a.5 = 1"])
def test_numeric_names_after_a_dot_are_refused(text: str) -> None:
    """A typo like `r2.5` (or `account.5`) is an unknown name, reported as an ExpressionError
    like any other; found by the SQL-like fuzzing above."""
    with pytest.raises(ExpressionError):
        bind_text(text)


@pytest.mark.parametrize("text", ["abs(t) > 1", "lower(a) = 'x'", "year(t) = 2026",
                                  "length(a) > 1", "contains(a, 'x')"])
def test_built_in_functions_check_their_argument_type(text: str) -> None:
    """A function given the wrong kind of value is refused before any SQL runs."""
    with pytest.raises(ExpressionError, match=r"\(\) works on"):
        bind_text(text)


def test_scope_fixture_resolves_every_generated_name() -> None:
    """Sanity check of the test's own scope: bare and `r.` names resolve, others do not."""
    for name, kind in COLUMN_TYPES.items():
        for qualifier in ("", "r"):
            binding = SCOPE.lookup(qualifier, name)
            assert binding is not None and binding.type == kind
    assert SCOPE.lookup("x", "a") is None
