"""Property: `clauses` and `clause_texts` split a condition without changing what it means."""

from __future__ import annotations

from hypothesis import assume, example, given
from hypothesis import strategies as st
from sqlglot import exp

from retainer.rulebook.expressions import clause_texts, clauses, parse
from tests.rulebook.expression_oracle import Row, evaluate, load
from tests.rulebook.expression_strategies import FAST, conditions, rows


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
