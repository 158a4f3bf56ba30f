"""Property: badly typed expressions and unknown names are refused before any SQL runs,
with a message that says what is wrong and, for a misspelt name, what was meant."""

from __future__ import annotations

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from retainer.rulebook.expressions import ExpressionError, Type, as_condition, bind, parse
from tests.rulebook.expression_oracle import COLUMN_TYPES, SCOPE, as_of_sql, bind_text
from tests.rulebook.expression_strategies import (
    MEDIUM,
    conditions,
    number_exprs,
    number_leaves,
    simple_conditions,
    text_leaves,
    timestamp_exprs,
)

non_literal_texts = st.one_of(st.sampled_from(["t", "r.t"]),
                              text_leaves.map(lambda x: f"lower({x})"),
                              st.builds(lambda x: f"t || {x}", text_leaves))
typed_strategies: dict[Type, st.SearchStrategy[str]] = {
    "number": number_exprs,
    "text": non_literal_texts,
    "timestamp": timestamp_exprs,
    "boolean": simple_conditions(number_leaves),
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
