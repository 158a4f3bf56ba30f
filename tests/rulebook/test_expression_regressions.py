"""Regressions: gaps the expression-language properties found.

Each of these failed on commit 56a14b1 and was fixed in c5f0a16; they pin the fixed behaviour.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlglot import exp

from retainer.rulebook.expressions import ExpressionError, parse
from tests.rulebook.expression_oracle import COLUMN_TYPES, SCOPE, Row, bind_text, evaluate, load
from tests.rulebook.expression_strategies import MEDIUM, rows


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
    like any other; found by the SQL-like fuzzing in test_expression_fuzzing."""
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
