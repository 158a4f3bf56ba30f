"""Small builders for the sqlglot trees the compiler emits, and the naming conventions.

Internal columns start with two underscores (`__account`, `__time`); entity columns carried
through the pipeline are prefixed with their entity (`account__tier`, `contact__role`), so they
never collide with trait names.
"""

from __future__ import annotations

from datetime import datetime

from sqlglot import exp

from retainer.compile.capabilities import Capabilities, TextTime
from retainer.rulebook.expressions import Type

ACCOUNT = "__account"
CONTACT = "__contact"
TIME = "__time"


def col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table=table, quoted=True) if not _plain(name) else exp.column(
        name, table=table)


def _plain(name: str) -> bool:
    return name.replace("_", "a").isalnum() and not name[0].isdigit() and name.islower()


def alias(expression: exp.Expr, name: str) -> exp.Expr:
    return exp.alias_(expression, name, quoted=not _plain(name))


def timestamp(value: datetime) -> exp.Expr:
    """A UTC timestamp literal that every dialect reads the same way (to the microsecond)."""
    text = value.strftime("%Y-%m-%d %H:%M:%S" + (".%f" if value.microsecond else ""))
    return exp.cast(exp.Literal.string(text), "TIMESTAMP")


def varchar(expression: exp.Expr, source_type: Type) -> exp.Expr:
    """Ids are compared as text so that `42` in one file matches `'42'` in another."""
    return expression if source_type == "text" else exp.cast(expression, "VARCHAR")


def utc_time(expression: exp.Expr, engine_type: str, text_time: TextTime = "try_cast"
             ) -> exp.Expr:
    """Normalise a time column to a naive UTC TIMESTAMP.

    Zone-aware values are converted to UTC; naive values and strings without an offset are
    read as UTC (engines run with their session time zone set to UTC); text that does not
    parse becomes NULL and is reported as rejected.
    """
    kind = engine_type.upper()
    if "WITH TIME ZONE" in kind or kind == "TIMESTAMPTZ":
        return exp.AtTimeZone(this=expression, zone=exp.Literal.string("UTC"))
    if kind.startswith("TIMESTAMP"):
        return expression if kind == "TIMESTAMP" else exp.cast(expression, "TIMESTAMP")
    if kind == "DATE":
        return exp.cast(expression, "TIMESTAMP")
    zoned: exp.Expr = exp.TryCast(this=expression, to=exp.DataType.build("TIMESTAMPTZ"))
    if text_time == "iso_pattern":
        # No TRY_CAST: cast only what the pattern accepts, so other text becomes NULL too.
        text = expression if category(engine_type) == "text" else exp.cast(
            expression, "VARCHAR")
        zoned = exp.Case(ifs=[exp.If(
            this=exp.RegexpLike(this=text.copy(), expression=exp.Literal.string(ISO_TIME)),
            true=exp.cast(expression.copy(), "TIMESTAMPTZ"))])
    return exp.AtTimeZone(this=zoned, zone=exp.Literal.string("UTC"))


# ISO-8601 times as DuckDB's TRY_CAST reads them (`2026-02-28`, `2026/2/8 1:02`,
# `2026-02-28T23:30:00.5+02:00`, `…Z`, `… Europe/Paris`, `… EST`), with real calendar days only
# (no 2026-02-29), so that a cast the pattern lets through does not fail; only an unknown
# zone name (`… Foo/Bar`) still does, with the engine's own message.
_DAY = {31: r"(0?[1-9]|[12]\d|3[01])", 30: r"(0?[1-9]|[12]\d|30)", 28: r"(0?[1-9]|1\d|2[0-8])"}
_LEAP_YEAR = r"(\d\d(0[48]|[2468][048]|[13579][26])|([02468][048]|[13579][26])00)"
_DATE = (rf"(\d{{4}}[-/]((0?[13578]|1[02])[-/]{_DAY[31]}|(0?[469]|11)[-/]{_DAY[30]}|"
         rf"0?2[-/]{_DAY[28]})|{_LEAP_YEAR}[-/]0?2[-/]29)")
_ZONE = r"(Z|[+-]\d\d(:?\d\d)?| [A-Za-z_]+/[A-Za-z0-9_/+-]+| [A-Z]{3,5}| [Uu][Tt][Cc])"
_CLOCK = rf"([ T]([01]?\d|2[0-3]):[0-5]?\d(:[0-5]?\d(\.\d+)?)?{_ZONE}?)?"
ISO_TIME = rf"^\s*{_DATE}{_CLOCK}\s*$"


def round_to(value: exp.Expr, digits: exp.Expr | None, capabilities: Capabilities) -> exp.Expr:
    """ROUND(value, digits) with DuckDB's meaning on every engine.

    DuckDB rounds the exact value of a double half away from zero: 2.675 (stored as
    2.67499999…) gives 2.67. An engine whose ROUND works on decimals (a double first cut to 15
    digits) gives 2.68 there, so it gets the rounding spelt out in plain arithmetic, exact for
    0 to 11 places (fewer than 0: to the nearest double). y = value·10ⁿ is rounded half away
    from zero as TRUNC(2y) − TRUNC(y) (doubling is exact), except at a tie, where the error of
    the product (Dekker's error-free product, over Veltkamp's split of the value) says on
    which side of it the exact value lies.
    """
    places = _integer(digits) if digits is not None else 0
    if capabilities.rounding == "native" or places is None:
        return exp.Round(this=value, decimals=digits)
    scale = exp.Literal.number(10 ** abs(places))
    if places < 0:
        scaled = exp.paren(exp.Div(this=value, expression=scale, typed=True))
        return exp.paren(exp.Mul(this=exp.paren(_half_away(scaled)), expression=scale.copy()))
    scaled = exp.paren(exp.Mul(this=value.copy(), expression=scale))
    rounded = _half_away(scaled)
    if places <= 11:  # 10ⁿ has at most 26 significant bits: the product's error is exact
        split = exp.Mul(this=exp.Literal.number(_SPLIT), expression=value.copy())
        high = exp.paren(exp.Sub(this=split, expression=exp.paren(
            exp.Sub(this=split.copy(), expression=value.copy()))))
        low = exp.paren(exp.Sub(this=value.copy(), expression=high.copy()))
        error = exp.paren(exp.Add(
            this=exp.paren(exp.Sub(this=exp.Mul(this=high, expression=scale.copy()),
                                   expression=scaled.copy())),
            expression=exp.Mul(this=low, expression=scale.copy())))
        fraction = exp.Abs(this=exp.Sub(this=scaled.copy(), expression=exp.Trunc(
            this=scaled.copy())))
        below_tie = exp.and_(fraction.eq(exp.Literal.number(0.5)), exp.LT(
            this=exp.Mul(this=error, expression=scaled.copy()), expression=exp.Literal.number(0)))
        rounded = exp.Sub(this=rounded, expression=exp.Case(
            ifs=[exp.If(this=below_tie, true=exp.Sign(this=scaled.copy()))],
            default=exp.Literal.number(0)))
    return exp.paren(exp.Div(this=exp.paren(rounded), expression=scale.copy(), typed=True))


_SPLIT = 134217729  # 2²⁷ + 1: Veltkamp's constant, splits a double into two 26-bit halves


def _half_away(scaled: exp.Expr) -> exp.Expr:
    """`scaled` rounded half away from zero: TRUNC(2y) − TRUNC(y)."""
    return exp.Sub(this=exp.Trunc(this=exp.Mul(this=scaled, expression=exp.Literal.number(2))),
                   expression=exp.Trunc(this=scaled.copy()))


def _integer(node: exp.Expr) -> int | None:
    try:
        value = node.to_py()
    except ValueError:
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def as_double(value: exp.Expr, value_type: Type, capabilities: Capabilities) -> exp.Expr:
    """A number or boolean as a DOUBLE (true → 1, false → 0)."""
    if value_type == "boolean" and not capabilities.boolean_arithmetic:
        value = exp.cast(value, "INT")
    return exp.cast(value, "DOUBLE")


def for_engine(tree: exp.Expr, capabilities: Capabilities) -> exp.Expr:
    """A bound rulebook expression spelt so that the engine gives it DuckDB's meaning."""

    def shape(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Round) and capabilities.rounding != "native":
            digits = node.args.get("decimals")
            return round_to(for_engine(node.this, capabilities),
                            None if digits is None else for_engine(digits, capabilities),
                            capabilities)
        if isinstance(node, exp.Contains) and not capabilities.contains_function:
            position = exp.StrPosition(this=for_engine(node.this, capabilities),
                                       substr=for_engine(node.expression, capabilities))
            return exp.paren(exp.GT(this=position, expression=exp.Literal.number(0)))
        return node

    return tree.transform(shape)


def category(engine_type: str) -> Type:
    """The expression language's type for an engine column type."""
    kind = engine_type.upper()
    if kind.startswith(("TIMESTAMP", "DATETIME")):
        return "timestamp"
    if kind == "DATE":
        return "date"
    if kind in ("BOOLEAN", "BOOL"):
        return "boolean"
    if kind.startswith(("VARCHAR", "TEXT", "CHAR", "STRING", "UUID", "ENUM")):
        return "text"
    if kind.startswith(("INT", "BIGINT", "SMALLINT", "TINYINT", "HUGEINT", "UBIGINT",
                        "UINTEGER", "USMALLINT", "UTINYINT", "DOUBLE", "FLOAT", "REAL",
                        "DECIMAL", "NUMERIC", "UHUGEINT")):
        return "number"
    return "unknown"


def literal(value: object) -> exp.Expr:
    if value is None:
        return exp.null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, (int, float)):
        return exp.Literal.number(value)
    return exp.Literal.string(str(value))


def select_star_plus(source: str, additions: list[exp.Expr]) -> exp.Select:
    return exp.select(exp.Star(), *additions).from_(source)
