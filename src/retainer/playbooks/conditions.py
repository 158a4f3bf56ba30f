"""A playbook's `when` and its templates, over the columns of the latest results.

`when` sees what a run published for the playbook's entity: traits, `health`,
`health_band`, `health.<component>`, dimensions (their segment as text), tags (true or
false), the included account columns (bare or `account.x`) and `as_of`. A contact
playbook sees the contact's results and, under `account.`, its account's. It is written in
the rulebook's expression language, so it is allow-listed and type-checked like any rule.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlglot import exp

from retainer.compile.sql import col, timestamp
from retainer.rulebook.expressions import (
    Binding,
    Bound,
    ExpressionError,
    Type,
    as_condition,
    bind,
    parse,
)

ACCOUNT_PREFIX = "account__"  # account columns beside a contact's, in a contact row


class ResultsScope:
    """Names of one level's results: `columns` maps each results column to its type."""

    def __init__(self, columns: Mapping[str, Type], level: str,
                 account_columns: Mapping[str, Type] | None = None) -> None:
        self.columns = dict(columns)
        self.level = level
        self.account_columns = dict(account_columns or {})

    def lookup(self, qualifier: str, name: str) -> Binding | None:
        if not qualifier:
            if name in self.columns:
                return Binding(col(name), self.columns[name], f"column:{name}")
            return None
        if qualifier == "health":
            key = f"health__{name}"
            source = self.columns if self.level == "account" else self.account_columns
            if key in source:
                prefix = "" if self.level == "account" else ACCOUNT_PREFIX
                return Binding(col(prefix + key), source[key], f"column:health.{name}")
            return None
        if qualifier == "account":
            if self.level == "account" and name in self.columns:
                return Binding(col(name), self.columns[name], f"column:{name}")
            if self.level == "contact" and name in self.account_columns:
                return Binding(col(ACCOUNT_PREFIX + name), self.account_columns[name],
                               f"column:account.{name}")
        if qualifier == "contact" and self.level == "contact" and name in self.columns:
            return Binding(col(name), self.columns[name], f"column:{name}")
        return None

    def candidates(self, qualifier: str) -> Iterable[str]:
        if qualifier == "health":
            source = self.columns if self.level == "account" else self.account_columns
            return [c.removeprefix("health__") for c in source if c.startswith("health__")]
        if qualifier == "account" and self.level == "contact":
            return list(self.account_columns)
        return [c for c in self.columns if "__" not in c]

    def describe(self) -> str:
        return f"the {self.level} results (traits, health, segments, tags, included columns)"


@dataclass(frozen=True)
class Condition:
    text: str
    bound: Bound

    @property
    def columns(self) -> list[str]:
        """The results columns it reads, by name (for the 'why')."""
        return sorted({c.name for c in self.bound.tree.find_all(exp.Column)})


def compile_when(text: str, scope: ResultsScope, as_of: datetime) -> Condition:
    """Parse, bind and type-check `when`; raises ExpressionError."""
    scope.columns.setdefault("as_of", "timestamp")
    tree = parse(text)
    bound = as_condition(bind(tree, scope, text, lambda: timestamp(as_of)), text)
    # `as_of` is a column of the results holding the run's as_of: bind it to the moment.
    literal = timestamp(as_of)
    tree = bound.tree.transform(
        lambda node: literal.copy() if isinstance(node, exp.Column) and node.name == "as_of"
        and not node.table else node)
    return Condition(text, Bound(tree, bound.type, bound.refs))


# --- templates -------------------------------------------------------------------------------

def template_fields(template: str) -> list[str]:
    """The `{field}` names of a template; raises ValueError for what cannot be filled."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"cannot read the template: {exc} (write literal braces as "
                         "{{ and }})") from None
    fields = []
    for _, field, _, _ in parsed:
        if field is None:
            continue
        if not field or not field.replace("_", "a").isalnum():
            raise ValueError(f"'{{{field}}}' is not a field; write a results column in "
                             "braces, e.g. {name}")
        fields.append(field)
    return fields


def render(template: str, row: Mapping[str, Any]) -> str:
    """Fill a template's fields from a results row; a missing value shows as '–'."""
    values = {k: ("–" if v is None else _plain(v)) for k, v in row.items()}
    try:
        return template.format_map(_Missing(values))
    except (ValueError, TypeError):
        return template.format_map(_Missing({k: str(v) for k, v in values.items()}))


def shown(value: Any) -> str:
    """A value as people read it in a reason: `–` for missing, yes/no, short numbers."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return str(_plain(value))


def _plain(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d}" if value.time() == datetime.min.time() else \
            f"{value:%Y-%m-%d %H:%M}"
    return value


class _Missing(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "–"


def check_expression(text: str, scope: ResultsScope) -> ExpressionError | None:
    """The problem of a `when` against a scope, or None."""
    try:
        compile_when(text, scope, datetime(2000, 1, 1))
    except ExpressionError as exc:
        return exc
    return None
