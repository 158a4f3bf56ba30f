"""Property: `parse` and `bind` raise `ExpressionError` and nothing else, whatever the text.

The expression language is the one place where text written by users becomes SQL that runs on
their data, so its contract is checked against generated input rather than a few examples.
"""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from retainer.rulebook.expressions import ExpressionError, bind, parse
from tests.rulebook.expression_oracle import SCOPE, as_of_sql, renders_as_one_select
from tests.rulebook.expression_strategies import FUZZ

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


def _parse_and_bind(text: str) -> None:
    try:
        tree = parse(text)
    except ExpressionError as error:
        assert 0 <= error.offset <= len(text), (text, error.offset)
        assert error.message
        return
    renders_as_one_select(tree)
    try:
        bound = bind(tree, SCOPE, text, as_of_sql())
    except ExpressionError as error:
        assert 0 <= error.offset <= len(text), (text, error.offset)
        return
    renders_as_one_select(bound.tree)


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
