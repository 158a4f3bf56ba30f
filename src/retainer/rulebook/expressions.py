"""The rulebook's expression language: SQL expressions, parsed by sqlglot and allow-listed.

Conditions and derived traits are written as SQL expressions (`features_90d >= 2 and nps > 8`).
They are parsed into sqlglot trees and checked against an allow-list of node types and
functions, so no subquery, DDL, window or unknown function can reach an engine. Every
identifier is bound through a `Scope` to a compiled column; unknown names get "did you mean".
A small type checker catches text compared with numbers before any SQL runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal, Protocol

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from retainer.errors import did_you_mean

Type = Literal["number", "text", "boolean", "timestamp", "date", "null", "unknown"]

# Node types an expression may contain. Anything else (Select, Subquery, Window, Drop,
# Star, Placeholder, Dot access into functions …) is refused.
_STRUCTURE: tuple[type[exp.Expr], ...] = (
    exp.Column, exp.Identifier, exp.Literal, exp.Boolean, exp.Null, exp.Paren, exp.DataType,
    exp.And, exp.Or, exp.Not, exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Is,
    exp.In, exp.Between, exp.Like, exp.ILike, exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod,
    exp.Neg, exp.Case, exp.If, exp.Cast, exp.TryCast, exp.Interval, exp.Var, exp.DPipe,
)
_NUMERIC_FUNCTIONS: tuple[type[exp.Expr], ...] = (
    exp.Abs, exp.Round, exp.Floor, exp.Ceil, exp.Sqrt, exp.Ln, exp.Pow, exp.Length, exp.Year,
    exp.Month,
)
_TEXT_FUNCTIONS: tuple[type[exp.Expr], ...] = (exp.Lower, exp.Upper, exp.Trim,
                                                     exp.Substring)
_BOOLEAN_FUNCTIONS: tuple[type[exp.Expr], ...] = (exp.Contains, exp.StartsWith,
                                                        exp.RegexpLike)
_PASSTHROUGH_FUNCTIONS: tuple[type[exp.Expr], ...] = (exp.Coalesce, exp.Nullif,
                                                           exp.Least, exp.Greatest)
# What the first argument of each built-in function must be.
_ARGUMENT_TYPES: tuple[tuple[tuple[type[exp.Expr], ...], tuple[Type, ...]], ...] = (
    ((exp.Abs, exp.Round, exp.Floor, exp.Ceil, exp.Sqrt, exp.Ln, exp.Pow), ("number",)),
    ((exp.Length, *_TEXT_FUNCTIONS, *_BOOLEAN_FUNCTIONS), ("text",)),
    ((exp.Year, exp.Month), ("timestamp", "date")),
    ((exp.Date,), ("timestamp", "date", "text")),
)
ALLOWED = (*_STRUCTURE, *_NUMERIC_FUNCTIONS, *_TEXT_FUNCTIONS, *_BOOLEAN_FUNCTIONS,
           *_PASSTHROUGH_FUNCTIONS, exp.Date)

# Functions of our own, rewritten into portable SQL at bind time.
CUSTOM_FUNCTIONS = {
    "days_between": 2,  # whole calendar days from the first date to the second
    "days_since": 1,    # days_between(x, as_of)
    "ratio": 2,         # a / b as a decimal; null when b is 0 or null
}
FUNCTION_NAMES = sorted(
    [*CUSTOM_FUNCTIONS, "abs", "round", "floor", "ceil", "sqrt", "ln", "pow", "length",
     "year", "month", "lower", "upper", "trim", "substring", "contains", "starts_with",
     "regexp_matches", "coalesce", "nullif", "least", "greatest", "date", "cast", "if"])
_CAST_TYPES: dict[object, Type] = {
    **{t: "number" for t in (exp.DataType.Type.INT, exp.DataType.Type.BIGINT,
                             exp.DataType.Type.DOUBLE, exp.DataType.Type.FLOAT,
                             exp.DataType.Type.DECIMAL, exp.DataType.Type.SMALLINT)},
    exp.DataType.Type.VARCHAR: "text", exp.DataType.Type.TEXT: "text",
    exp.DataType.Type.BOOLEAN: "boolean", exp.DataType.Type.DATE: "date",
    exp.DataType.Type.TIMESTAMP: "timestamp", exp.DataType.Type.TIMESTAMPNTZ: "timestamp",
    exp.DataType.Type.DATETIME: "timestamp",
}
_ORDERED = ("number", "timestamp", "date", "text")


class ExpressionError(Exception):
    """A problem in one expression; `offset` is the character position inside it."""

    def __init__(self, message: str, offset: int = 0, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset
        self.hint = hint


@dataclass(frozen=True)
class Binding:
    """What a name means in a scope: the SQL to put in its place, its type, and what it is."""

    sql: exp.Expr
    type: Type
    ref: str  # e.g. "trait:logins_30d", "column:events.name", "as_of"


class Scope(Protocol):
    """Resolves identifiers; `qualifier` is '' for bare names, else e.g. 'account'."""

    def lookup(self, qualifier: str, name: str) -> Binding | None: ...

    def candidates(self, qualifier: str) -> Iterable[str]: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class Bound:
    """An expression ready for compilation."""

    tree: exp.Expr   # names replaced by their compiled columns
    type: Type
    refs: frozenset[str] = field(default_factory=frozenset)


def parse(text: str) -> exp.Expr:
    """Parse and allow-list one expression. Raises ExpressionError (never anything else)."""
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("empty expression", 0, "write a condition such as 'logins_30d > 0'")
    try:
        statements = sqlglot.parse(text, read="duckdb")
    except (ParseError, TokenError) as exc:
        raise _parse_error(text, exc) from None
    except Exception as exc:  # sqlglot may raise other errors on hostile input
        raise ExpressionError(f"cannot parse expression: {exc}", 0) from None
    if len(statements) != 1 or statements[0] is None:
        raise ExpressionError("write a single expression (no ';')", max(text.find(";"), 0))
    tree = statements[0]
    _check_allowed(tree, text)
    return tree


def clauses(tree: exp.Expr) -> tuple[Literal["all", "any"], list[exp.Expr]]:
    """Split a condition into its top-level clauses, for explanations.

    `a and b and c` → ("all", [a, b, c]); `a or b` → ("any", [a, b]); otherwise one clause.
    """
    node = tree.unnest() if isinstance(tree, exp.Paren) else tree
    if isinstance(node, exp.And):
        return "all", list(node.flatten())
    if isinstance(node, exp.Or):
        return "any", list(node.flatten())
    return "all", [node]


def clause_texts(text: str, mode: str, count: int) -> list[str] | None:
    """The user's own text of each top-level clause, for explanations.

    Splits at top-level AND (mode "all") or OR (mode "any"), skipping those inside
    parentheses, CASE … END and BETWEEN … AND. None when the split does not give `count`
    pieces (the caller then prints the parsed clauses instead).
    """
    from sqlglot.dialects.duckdb import DuckDB
    from sqlglot.tokenizer_core import TokenType

    splitter = TokenType.AND if mode == "all" else TokenType.OR
    depth, pending_between, start = 0, 0, 0
    pieces: list[str] = []
    for token in DuckDB().tokenize(text):
        kind = token.token_type
        if kind in (TokenType.L_PAREN, TokenType.CASE):
            depth += 1
        elif kind in (TokenType.R_PAREN, TokenType.END):
            depth -= 1
        elif kind == TokenType.BETWEEN and depth == 0:
            pending_between += 1
        elif kind == TokenType.AND and depth == 0 and pending_between:
            pending_between -= 1
        elif kind == splitter and depth == 0:
            pieces.append(text[start:token.start].strip())
            start = token.end + 1
    pieces.append(text[start:].strip())
    return pieces if len(pieces) == count and all(pieces) else None


def bind(tree: exp.Expr, scope: Scope, text: str,
         as_of: Callable[[], exp.Expr]) -> Bound:
    """Resolve names, rewrite our functions, and type-check. Raises ExpressionError."""
    refs: set[str] = set()
    checker = _Checker(scope, text, refs)
    work = tree.copy()  # bindings are keyed by node identity, so check and replace one copy
    result_type = checker.type_of(work)
    for column in work.find_all(exp.Column):
        if id(column) not in checker.bindings:  # a name in a spot the checker has no rule for
            checker.type_of(column)
    bound = work.transform(lambda node: _replace_names(node, checker), copy=False)
    bound = bound.transform(lambda node: _rewrite_functions(node, as_of), copy=False)
    return Bound(bound, result_type, frozenset(refs))


def as_condition(bound: Bound, text: str) -> Bound:
    """A condition must be boolean; `features_90d` alone is a number, not a condition."""
    if bound.type not in ("boolean", "null", "unknown"):
        raise ExpressionError(f"'{text.strip()}' is a {bound.type}, not a condition", 0,
                              "compare it with something, e.g. "
                              f"'{text.strip()} > 0'")
    return bound


# --- allow-list ------------------------------------------------------------------------------

def _parse_error(text: str, exc: ParseError | TokenError) -> ExpressionError:
    errors = getattr(exc, "errors", None) or []
    if errors:
        first = errors[0]
        offset = _offset_of(text, first.get("line", 1), first.get("col", 1))
        description = str(first.get("description", "syntax error"))
        highlight = first.get("highlight")
        if "Required keyword" in description or "Expected" in description:
            description = "incomplete expression"
        near = f" near '{highlight}'" if highlight else ""
        return ExpressionError(f"cannot parse expression: {description}{near}", offset,
                               "expressions use SQL syntax: and/or/not, = <> < <= > >=, "
                               "'single-quoted text', functions like coalesce(x, 0)")
    return ExpressionError(f"cannot parse expression: {exc}", 0)


def _offset_of(text: str, line: int, col: int) -> int:
    lines = text.split("\n")
    before = sum(len(item) + 1 for item in lines[: max(line - 1, 0)])
    return max(min(before + col - 1, len(text)), 0)


def _walk(tree: exp.Expr) -> list[exp.Expr]:
    """Every node, except inside type names (`decimal(18, 3)` carries its own literals)."""
    nodes, stack = [], [tree]
    while stack:
        node = stack.pop()
        nodes.append(node)
        if not isinstance(node, exp.DataType):
            stack.extend(node.iter_expressions())
    return nodes


def _check_allowed(tree: exp.Expr, text: str) -> None:
    for node in _walk(tree):
        missing = node.error_messages()
        if missing or (isinstance(node, exp.In) and not node.expressions):
            raise ExpressionError("incomplete expression: " + (
                f"'{node.key}' is missing a part" if missing else "IN needs a list of values"),
                _find(text, node.key), "check the operators and parentheses around it")
        if isinstance(node, exp.Anonymous):
            name = str(node.this).lower()
            if name not in CUSTOM_FUNCTIONS:
                raise ExpressionError(
                    f"unknown function '{node.this}'", _find(text, str(node.this)),
                    did_you_mean(name, FUNCTION_NAMES)
                    or "available functions: " + ", ".join(FUNCTION_NAMES))
            if len(node.expressions) != CUSTOM_FUNCTIONS[name]:
                raise ExpressionError(
                    f"{name}() takes {CUSTOM_FUNCTIONS[name]} argument"
                    f"{'s' if CUSTOM_FUNCTIONS[name] > 1 else ''}", _find(text, name))
            continue
        if isinstance(node, (exp.Cast, exp.TryCast)):
            target = node.to.this if isinstance(node.to, exp.DataType) else None
            if target not in _CAST_TYPES:
                raise ExpressionError(f"cannot cast to {node.to.sql()}", _find(text, "cast"),
                                      "cast to int, bigint, double, decimal, varchar, "
                                      "boolean, date or timestamp")
        if isinstance(node, exp.Column) and (node.args.get("db") or node.args.get("catalog")):
            raise ExpressionError(f"'{node.sql()}' has too many parts",
                                  _find(text, node.name),
                                  "write name, account.column or contact.column")
        if not isinstance(node, ALLOWED):
            raise ExpressionError(_refusal(node), _find(text, node.sql().split(" ")[0]))


def _refusal(node: exp.Expr) -> str:
    if isinstance(node, (exp.Select, exp.Subquery, exp.Query)):
        return "subqueries are not allowed in rulebook expressions"
    if isinstance(node, exp.Window):
        return "window functions are not allowed; use a trait with a window instead"
    if isinstance(node, exp.AggFunc):
        return (f"aggregate '{node.sql()}' is not allowed in an expression; "
                "declare it as a trait (count/sum/avg/… with from, where and window)")
    if isinstance(node, exp.Func):
        return f"function '{node.sql().split('(')[0].lower()}' is not allowed"
    if isinstance(node, exp.Star):
        return "'*' is not allowed in an expression"
    return f"'{node.key}' is not allowed in a rulebook expression"


def _find(text: str, fragment: str) -> int:
    index = text.lower().find(fragment.lower()) if fragment else -1
    return max(index, 0)


# --- binding and types -----------------------------------------------------------------------

_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)
_ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod)


class _Checker:
    """Computes the type of every node, binding columns as it goes."""

    def __init__(self, scope: Scope, text: str, refs: set[str]) -> None:
        self.scope = scope
        self.text = text
        self.refs = refs
        self.bindings: dict[int, Binding] = {}

    def type_of(self, node: exp.Expr) -> Type:
        if isinstance(node, exp.Column):
            return self._column(node)
        if isinstance(node, exp.Paren):
            return self.type_of(node.this)
        if isinstance(node, exp.Literal):
            return "text" if node.is_string else "number"
        if isinstance(node, exp.Boolean):
            return "boolean"
        if isinstance(node, exp.Null):
            return "null"
        if isinstance(node, (exp.And, exp.Or)):
            for side in (node.this, node.expression):
                self._expect_condition(side)
            return "boolean"
        if isinstance(node, exp.Not):
            self._expect_condition(node.this)
            return "boolean"
        if isinstance(node, _COMPARISONS):
            self._comparable(node, node.this, node.expression)
            return "boolean"
        if isinstance(node, exp.Is):
            self.type_of(node.this)
            self.type_of(node.expression)
            return "boolean"
        if isinstance(node, exp.Between):
            for bound in (node.args["low"], node.args["high"]):
                self._comparable(node, node.this, bound)
            return "boolean"
        if isinstance(node, exp.In):
            for item in node.expressions:
                self._comparable(node, node.this, item)
            return "boolean"
        if isinstance(node, (exp.Like, exp.ILike)):
            self._expect(node.this, ("text",), "LIKE compares text")
            self._expect(node.expression, ("text",), "a LIKE pattern is text")
            return "boolean"
        if isinstance(node, exp.Neg):
            self._expect(node.this, ("number",), "only numbers can be negated")
            return "number"
        if isinstance(node, _ARITHMETIC):
            return self._arithmetic(node)
        if isinstance(node, exp.DPipe):
            for side in (node.this, node.expression):
                self.type_of(side)
            return "text"
        if isinstance(node, exp.Case):
            operand = node.this  # `case x when 1 then …` compares x with each value
            for branch in node.args.get("ifs") or []:
                if operand is not None:
                    self._comparable(branch, operand, branch.this)
                else:
                    self._expect_condition(branch.this)
            return self._common([*(b.args["true"] for b in node.args.get("ifs") or []),
                                 node.args.get("default")])
        if isinstance(node, exp.If):
            self._expect_condition(node.this)
            return self._common([node.args.get("true"), node.args.get("false")])
        if isinstance(node, (exp.Cast, exp.TryCast)):
            self.type_of(node.this)
            return _CAST_TYPES.get(node.to.this, "unknown")
        if isinstance(node, exp.Interval):
            self._expect(node.this, ("number", "text"), "an interval counts a number of units")
            return "unknown"
        if isinstance(node, exp.Anonymous):
            return self._custom(node)
        if isinstance(node, _PASSTHROUGH_FUNCTIONS):
            return self._common([node.this, *node.expressions,
                                 node.args.get("expression")])
        for classes, result in ((_NUMERIC_FUNCTIONS, "number"), (_TEXT_FUNCTIONS, "text"),
                                (_BOOLEAN_FUNCTIONS, "boolean"), ((exp.Date,), "date")):
            if isinstance(node, classes):
                self._function_argument(node)
                self._children(node)
                return result  # type: ignore[return-value]
        self._children(node)
        return "unknown"

    def _function_argument(self, node: exp.Expr) -> None:
        """The first argument of a built-in function must have the type it works on."""
        wanted = next((kinds for classes, kinds in _ARGUMENT_TYPES if isinstance(node, classes)),
                      None)
        if wanted is not None and node.this is not None:
            name = node.sql(dialect="duckdb").split("(")[0].lower()
            self._expect(node.this, wanted, f"{name}() works on {' or '.join(wanted)}s")

    def _children(self, node: exp.Expr) -> None:
        for child in node.iter_expressions():
            if not isinstance(child, (exp.DataType, exp.Var, exp.Identifier)):
                self.type_of(child)

    def _column(self, node: exp.Column) -> Type:
        qualifier, name = node.table.lower(), node.name
        binding = self.scope.lookup(qualifier, name)
        if binding is None:
            offset = int(node.this.meta.get("start", _find(self.text, name)))
            if qualifier:
                offset = max(_find(self.text, f"{node.table}.{name}"), 0)
            label = f"{qualifier}.{name}" if qualifier else name
            hint = did_you_mean(name, self.scope.candidates(qualifier))
            if getattr(node.this, "quoted", False) and not qualifier:
                hint = f"text values take single quotes: '{name}'"
            raise ExpressionError(f"unknown name '{label}' in {self.scope.describe()}",
                                  offset, hint or _available(self.scope, qualifier))
        self.bindings[id(node)] = binding
        self.refs.add(binding.ref)
        return binding.type

    def _custom(self, node: exp.Anonymous) -> Type:
        name = str(node.this).lower()
        arg_types = [self.type_of(arg) for arg in node.expressions]
        if name in ("days_between", "days_since"):
            for arg, arg_type in zip(node.expressions, arg_types, strict=True):
                if arg_type not in ("timestamp", "date", "null", "unknown", "text"):
                    raise ExpressionError(f"{name}() needs dates or timestamps, but "
                                          f"'{arg.sql()}' is a {arg_type}",
                                          _find(self.text, arg.sql()))
        if name == "ratio":
            for arg, arg_type in zip(node.expressions, arg_types, strict=True):
                if arg_type not in ("number", "null", "unknown"):
                    raise ExpressionError(f"ratio() needs numbers, but '{arg.sql()}' is a "
                                          f"{arg_type}", _find(self.text, arg.sql()))
        return "number"

    def _expect_condition(self, node: exp.Expr) -> None:
        kind = self.type_of(node)
        if kind not in ("boolean", "null", "unknown"):
            raise ExpressionError(f"'{node.sql()}' is a {kind}, not a condition",
                                  _find(self.text, node.sql()),
                                  f"compare it, e.g. '{node.sql()} > 0'")

    def _expect(self, node: exp.Expr, kinds: tuple[Type, ...], why: str) -> None:
        kind = self.type_of(node)
        if kind not in (*kinds, "null", "unknown"):
            raise ExpressionError(f"{why}, but '{node.sql()}' is a {kind}",
                                  _find(self.text, node.sql()))

    def _comparable(self, node: exp.Expr, left: exp.Expr,
                    right: exp.Expr) -> None:
        a, b = self.type_of(left), self.type_of(right)
        if _compatible(a, b, left, right):
            return
        raise ExpressionError(
            f"'{node.sql()}' compares a {a} with a {b}", _find(self.text, left.sql()),
            _type_hint(a, b))

    def _arithmetic(self, node: exp.Expr) -> Type:
        a, b = self.type_of(node.this), self.type_of(node.expression)
        if {a, b} <= {"number", "null", "unknown"}:
            return "number"
        temporal = {"timestamp", "date"}
        if isinstance(node, (exp.Add, exp.Sub)) and (a in temporal) and b == "unknown":
            return a  # a time plus or minus an interval
        bad = a if a not in ("number", "null", "unknown") else b
        raise ExpressionError(f"'{node.sql()}' does arithmetic on a {bad}",
                              _find(self.text, node.sql()),
                              "use days_between(a, b) for dates; arithmetic needs numbers")

    def _common(self, nodes: list[exp.Expr | None]) -> Type:
        kinds = [self.type_of(n) for n in nodes if n is not None]
        known = [k for k in kinds if k not in ("null", "unknown")]
        for kind in known[1:]:
            if kind != known[0] and {kind, known[0]} != {"timestamp", "date"}:
                raise ExpressionError(f"branches mix a {known[0]} and a {kind}",
                                      0, "make every branch the same type")
        return known[0] if known else ("unknown" if "unknown" in kinds else "null")


def _compatible(a: Type, b: Type, left: exp.Expr, right: exp.Expr) -> bool:
    if a == b or "null" in (a, b) or "unknown" in (a, b):
        return True
    if {a, b} == {"timestamp", "date"}:
        return True
    # A date or timestamp compared with a text literal: '2024-01-01' is read as a date.
    literal = right if b == "text" else left if a == "text" else None
    return (isinstance(literal, exp.Literal) and bool({a, b} & {"timestamp", "date"}))


def _type_hint(a: Type, b: Type) -> str:
    if {a, b} == {"number", "text"}:
        return "quote text values ('gold') and leave numbers bare (5); check which side is text"
    if "boolean" in (a, b):
        return "a yes/no trait is compared with true or false"
    return "compare values of the same type"


def _available(scope: Scope, qualifier: str) -> str:
    names = sorted(scope.candidates(qualifier))
    if not names:
        return f"nothing named '{qualifier}.…' is available here"
    shown = ", ".join(names[:12]) + (" …" if len(names) > 12 else "")
    return f"available: {shown}"


def _replace_names(node: exp.Expr, checker: _Checker) -> exp.Expr:
    binding = checker.bindings.get(id(node))
    if binding is not None:
        return binding.sql.copy()
    return node


def _rewrite_functions(node: exp.Expr,
                       as_of: Callable[[], exp.Expr]) -> exp.Expr:
    if not isinstance(node, exp.Anonymous):
        return node
    name = str(node.this).lower()
    args = list(node.expressions)
    if name == "days_since":
        name, args = "days_between", [args[0], as_of()]
    if name == "days_between":
        return days_between(args[0], args[1])
    if name == "ratio":
        # Parenthesised so `ratio(a, b / 7)` stays a / (b / 7) when rendered.
        numerator, denominator = exp.paren(args[0]), exp.paren(args[1])
        return exp.Case(ifs=[exp.If(this=exp.or_(denominator.copy().is_(exp.null()),
                                                 denominator.copy().eq(0)),
                                    true=exp.null())],
                        default=exp.Div(this=exp.cast(numerator, "DOUBLE"),
                                        expression=denominator))
    return node


def days_between(start: exp.Expr, end: exp.Expr) -> exp.Expr:
    """Calendar days from `start` to `end` (dates, so every engine agrees)."""
    return exp.DateDiff(this=exp.cast(end, "DATE"), expression=exp.cast(start, "DATE"),
                        unit=exp.var("DAY"))
