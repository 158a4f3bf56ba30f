"""What a sync sends: which columns of the published results, and which entities (`where`).

The columns are those of `account_results` / `contact_results`. When validating, they come
from the compiled plan (before any run); when syncing, from the published table itself, with
its real types. `where` is the rulebook's expression language over those columns: parsed,
allow-listed and bound by the same machinery as segment rules, so it can name only result
columns and `as_of`, and never inject SQL.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlglot import exp

from retainer.compile.plan import Plan
from retainer.rulebook.destination_models import Sync
from retainer.rulebook.expressions import Binding, Bound, Type, as_condition, bind, parse
from retainer.rulebook.fields import Entity
from retainer.rulebook.loader import Rulebook


def results_table(level: Entity) -> str:
    return f"{level}_results"


def key_columns(rulebook: Rulebook, level: Entity) -> list[str]:
    """The id columns every record carries: the entity's key (and a contact's account)."""
    if level == "account":
        return [rulebook.key_column("account")]
    return [rulebook.key_column("contact"), rulebook.contact_account_column()]


def default_columns(rulebook: Rulebook, level: Entity, available: Iterable[str]) -> list[str]:
    """Segments, tags and health (with its band) — what a sync sends when it names none."""
    names = [n for n, d in rulebook.dimensions.items() if d.entity == level]
    names += [n for n, t in rulebook.tags.items() if t.entity == level]
    if level == "account" and rulebook.health is not None:
        names += ["health", "health_band"]
    present = set(available)
    return [n for n in names if n in present]


def dimension_names(rulebook: Rulebook, level: Entity) -> dict[str, str]:
    """Result column → the dimension it is stored as in history (tags as `tag:<name>`)."""
    names = {n: n for n, d in rulebook.dimensions.items() if d.entity == level}
    names.update({n: f"tag:{n}" for n, t in rulebook.tags.items() if t.entity == level})
    return names


def planned_columns(rulebook: Rulebook, plan: Plan, level: Entity) -> dict[str, Type]:
    """The columns the plan publishes for `level`, with the types known before a run."""
    step = next((s for s in plan.outputs() if s.name == results_table(level)), None)
    if step is None:
        return {}
    dimensions = {n for n, d in rulebook.dimensions.items() if d.entity == level}
    tags = {n for n, t in rulebook.tags.items() if t.entity == level}
    types: dict[str, Type] = {}
    for select in step.query.selects:
        name = select.alias_or_name
        if name in dimensions or name in ("health_band",):
            types[name] = "text"
        elif name in tags:
            types[name] = "boolean"
        elif name == "as_of":
            types[name] = "timestamp"
        elif name in key_columns(rulebook, level):
            types[name] = "text"
        else:
            types[name] = "unknown"  # traits and account columns: checked at sync time
    return types


@dataclass(frozen=True)
class ResultScope:
    """Names in a sync's `where`: the columns of the published results."""

    columns: Mapping[str, Type]

    def lookup(self, qualifier: str, name: str) -> Binding | None:
        if qualifier or name not in self.columns:
            return None
        return Binding(exp.column(name, quoted=True), self.columns[name], f"result:{name}")

    def candidates(self, qualifier: str) -> Iterable[str]:
        return [] if qualifier else sorted(self.columns)

    def describe(self) -> str:
        return "the published results (their traits, segments, tags, health and columns)"


def compile_where(sync: Sync, columns: Mapping[str, Type]) -> exp.Expr | None:
    """The sync's `where` as a condition over the results; raises ExpressionError."""
    if sync.where is None:
        return None
    tree = parse(sync.where)
    # `as_of` is the column of the results: the moment the published run evaluated.
    bound: Bound = bind(tree, ResultScope(columns), sync.where,
                        lambda: exp.column("as_of", quoted=True))
    return as_condition(bound, sync.where).tree

