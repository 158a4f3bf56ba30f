"""Property: anything hostile (subqueries, statements, windows, aggregates, unknown
functions, `*`, comments, quote tricks …) is refused, and whatever *is* accepted renders as one
plain SELECT expression."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from sqlglot import exp

from retainer.rulebook.expressions import ExpressionError, parse
from tests.rulebook.expression_oracle import bind_text, connection, renders_as_one_select
from tests.rulebook.expression_strategies import MEDIUM, conditions, number_exprs, quote

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
    renders_as_one_select(tree)
    if style == "--" or not {"*/", "/*"} & {comment[i:i + 2] for i in range(len(comment))}:
        assert _without_comments(tree) == _without_comments(parse(c))
        renders_as_one_select(bind_text(text).tree)


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
