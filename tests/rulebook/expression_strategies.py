"""Hypothesis strategies for the expression-language properties: rows of `r` and
well-typed expression text over its columns (numbers, text, timestamps and conditions)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from retainer.rulebook.expressions import Type
from tests.rulebook.expression_oracle import Row

FAST = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
MEDIUM = settings(max_examples=100, deadline=None,
                  suppress_health_check=[HealthCheck.too_slow])
FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

rows = st.builds(
    Row,
    a=st.none() | st.integers(-1000, 1000),
    b=st.none() | st.integers(-3, 3).map(float)
    | st.floats(-1000, 1000, allow_nan=False, allow_infinity=False),
    t=st.none() | st.text(alphabet="abAB xy'%_", max_size=6),
    ts=st.none() | st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2026, 12, 31)),
    flag=st.none() | st.booleans(),
)

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


def simple_conditions(numbers: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
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
    simple = simple_conditions(number_leaves)
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


conditions = st.recursive(simple_conditions(number_exprs), _condition_extend, max_leaves=5)
typed_exprs: st.SearchStrategy[tuple[str, Type]] = st.one_of(
    conditions.map(lambda text: (text, "boolean")),
    number_exprs.map(lambda text: (text, "number")),
    text_exprs.map(lambda text: (text, "text")),
)
