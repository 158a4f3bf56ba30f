"""A plan step's query as dbt model SQL: relations become `ref()` / `source()` calls.

The swap happens on the sqlglot tree, never on SQL text: every Table node that names another
step, a source (`src_<name>`) or `previous_state` gets a placeholder identifier (and, when it
had no alias, its old name as alias, so `agg_events.x` still resolves). The tree is rendered
in the target dialect, and only then is each placeholder — a token checked to occur nowhere
else in the text — replaced by its Jinja call. Everything around the placeholders is made
inert for Jinja, so a `{{` inside a rule's string literal stays a literal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

from sqlglot import exp

from retainer.errors import RetainerError

SOURCE_GROUP = "retainer"
_JINJA_OPENERS = ("{{", "{%", "{#")


@dataclass(frozen=True, order=True)
class Relation:
    """What a Table node of a plan step stands for in dbt."""

    kind: Literal["ref", "source"]
    name: str

    def jinja(self) -> str:
        if self.kind == "ref":
            return "{{ ref(" + _jinja_string(self.name) + ") }}"
        return ("{{ source(" + _jinja_string(SOURCE_GROUP) + ", " + _jinja_string(self.name)
                + ") }}")


Resolver = Callable[[str], Relation | None]


@dataclass(frozen=True)
class ModelSql:
    text: str                       # Jinja-templated SQL, ready for a dbt model file
    reads: tuple[Relation, ...]     # the relations it reads, sorted, without repeats


def model_sql(query: exp.Query, dialect: str, resolve: Resolver) -> ModelSql:
    """Render `query` in `dialect` with its relations as `ref()` / `source()` calls.

    `resolve` maps an unqualified relation name to what it stands for; a name it does not
    know is an error (a plan only reads steps, sources and `previous_state`).
    """
    tree = query.copy()
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    prefix = _free_prefix(query.sql(dialect=dialect))
    placeholders: dict[str, Relation] = {}
    for table in list(_relations(tree)):
        name = table.name
        if name in ctes:
            continue
        relation = resolve(name)
        if relation is None:
            raise RetainerError(f"a compiled step reads '{name}', which is neither a step nor "
                                "a source", hint="this is a bug in Retainer; please report it")
        token = f"{prefix}{len(placeholders)}_"  # `_1_` is no part of `_10_`
        placeholders[token] = relation
        if not table.alias:
            table.set("alias", exp.TableAlias(this=exp.to_identifier(name)))
        table.set("this", exp.to_identifier(token))
    rendered = tree.sql(dialect=dialect, pretty=True)
    found: list[tuple[int, str]] = []
    for token, relation in placeholders.items():
        at = rendered.find(token)
        if rendered.count(token) != 1 or rendered[at - 1] in "\"`[" \
                or rendered[at + len(token):at + len(token) + 1] in ("\"", "`", "]"):
            raise RetainerError(f"could not place relation '{relation.name}' in the "
                                f"{dialect} SQL", hint="this is a bug in Retainer; please "
                                                       "report it")
        found.append((at, token))
    parts: list[str] = []
    done = 0
    for start, token in sorted(found):
        parts += [jinja_text(rendered[done:start]), placeholders[token].jinja()]
        done = start + len(token)
    parts.append(jinja_text(rendered[done:]))
    return ModelSql("".join(parts), tuple(sorted(set(placeholders.values()))))


def jinja_text(text: str) -> str:
    """`text` as it must appear in a file dbt renders with Jinja, to come out unchanged."""
    if not any(opener in text for opener in _JINJA_OPENERS) and not text.endswith("{"):
        return text
    return "{{ " + _jinja_string(text) + " }}"


def _jinja_string(text: str) -> str:
    """A Jinja string literal (Jinja decodes backslash escapes in its literals)."""
    escaped = text.replace("\\", "\\\\").replace("'", "\\'").replace("\r", "\\r")
    return "'" + escaped + "'"


def _relations(tree: exp.Expr) -> Iterator[exp.Table]:
    """Tables that name a relation: unqualified, by a plain identifier (not a function)."""
    for table in tree.find_all(exp.Table):
        if isinstance(table.this, exp.Identifier) and not table.args.get("db") \
                and not table.args.get("catalog"):
            yield table


def _free_prefix(sql: str) -> str:
    """A placeholder prefix that occurs nowhere in the SQL (so no literal can collide)."""
    prefix = "dbt_relation_"
    while prefix in sql:
        prefix = "x" + prefix
    return prefix
