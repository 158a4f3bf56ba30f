"""Property: well-typed expressions bind, their SQL runs in DuckDB and means what the text
meant — including the functions Retainer adds (`ratio`, `days_between`, `days_since`)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from retainer.rulebook.expressions import Type, as_condition
from tests.rulebook.expression_oracle import Outcome, Row, bind_text, evaluate, load
from tests.rulebook.expression_strategies import FUZZ, MEDIUM, rows, timestamp_values, typed_exprs


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
