"""Small builders for the sqlglot trees the compiler emits, and the naming conventions.

Internal columns start with two underscores (`__account`, `__time`); entity columns carried
through the pipeline are prefixed with their entity (`account__tier`, `contact__role`), so they
never collide with trait names.
"""

from __future__ import annotations

from datetime import datetime

from sqlglot import exp

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


def utc_time(expression: exp.Expr, engine_type: str) -> exp.Expr:
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
    zoned = exp.TryCast(this=expression, to=exp.DataType.build("TIMESTAMPTZ"))
    return exp.AtTimeZone(this=zoned, zone=exp.Literal.string("UTC"))


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
