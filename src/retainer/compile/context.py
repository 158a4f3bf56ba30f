"""Shared state of one compilation: the rulebook, the catalog, problems found, and the
on-demand binding of computed columns (so a trait is bound before anything that reads it,
and a dependency cycle is found where it closes)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlglot import exp

from retainer.compile.capabilities import DIALECTS, Capabilities
from retainer.compile.catalog import Catalog
from retainer.compile.sql import col, timestamp
from retainer.errors import Location, Problem
from retainer.rulebook.expressions import Binding, ExpressionError, Type
from retainer.rulebook.fields import Entity
from retainer.rulebook.loader import Rulebook

NodeKind = Literal["trait", "dimension", "tag", "health", "component", "band"]
RESERVED = ("health", "health_band", "as_of", "account", "contact")


@dataclass
class Node:
    """A computed column of an entity's results, with what it needs and what it adds."""

    name: str
    level: Entity
    kind: NodeKind
    type: Type = "unknown"
    deps: set[str] = field(default_factory=set)
    columns: list[exp.Expr] = field(default_factory=list)
    aggregate: bool = False          # computed in an aggregate pass, joined into the base
    explain: dict[str, Any] = field(default_factory=dict)


@dataclass
class Context:
    rulebook: Rulebook
    catalog: Catalog
    as_of: datetime
    clock: datetime
    capabilities: Capabilities = DIALECTS["duckdb"]
    problems: list[Problem] = field(default_factory=list)
    nodes: dict[str, Node] = field(default_factory=dict)
    binders: dict[str, Callable[[], Node]] = field(default_factory=dict)
    visiting: list[str] = field(default_factory=list)
    failed: set[str] = field(default_factory=set)
    # Columns of the accounts / contacts sources that expressions read, so staging and the
    # pipelines carry only those.
    used_columns: dict[str, set[str]] = field(
        default_factory=lambda: {"account": set(), "contact": set()})
    # The account columns that contact-level expressions read: the only ones the contact
    # pipeline carries for each of its (many) rows.
    account_columns_of_contacts: set[str] = field(default_factory=set)

    # --- sources -------------------------------------------------------------------------

    @property
    def accounts(self) -> str:
        name = self.rulebook.source_of_kind("accounts")
        assert name is not None, "checked by validate_sources"
        return name

    @property
    def contacts(self) -> str | None:
        return self.rulebook.source_of_kind("contacts")

    @property
    def identities(self) -> str | None:
        return self.rulebook.source_of_kind("identities")

    def can_be_later(self, level: Entity) -> bool:
        """Whether an account (contact) can exist only after as_of: its source has a time."""
        source = self.accounts if level == "account" else self.contacts
        return source is not None and self.rulebook.sources[source].time is not None

    def as_of_sql(self) -> exp.Expr:
        return timestamp(self.as_of)

    def as_of_binding(self) -> Binding:
        return Binding(self.as_of_sql(), "timestamp", "as_of")

    # --- problems ------------------------------------------------------------------------

    def problem(self, message: str, location: Location | None, hint: str | None = None) -> None:
        self.problems.append(Problem(message, location, hint))

    def expression_problem(self, section: str, name: str, sub: tuple[str | int, ...],
                           error: ExpressionError, what: str) -> None:
        origin = self.rulebook.origin(section, name)
        location = origin.inside(sub, error.offset)
        self.problem(f"{what}: {error.message}", location, error.hint)

    # --- on-demand binding of computed columns -------------------------------------------

    def register(self, name: str, binder: Callable[[], Node]) -> None:
        self.binders[name] = binder

    def ensure(self, name: str) -> Node:
        """The bound node `name`, binding it (and its dependencies) first if needed."""
        if name in self.nodes:
            return self.nodes[name]
        if name in self.visiting:
            cycle = [*self.visiting[self.visiting.index(name):], name]
            self._cycle(cycle)
            return Node(name, "account", "trait")
        self.visiting.append(name)
        try:
            node = self.binders[name]()
        finally:
            self.visiting.pop()
        self.nodes[name] = node
        return node

    def _cycle(self, cycle: list[str]) -> None:
        if any(member in self.failed for member in cycle):
            return
        self.failed.update(cycle)
        first = cycle[0]
        section = self.section_of(first)
        location = self.rulebook.origin(section, first).location if section else None
        self.problem("dependency cycle: " + " → ".join(cycle), location,
                     "a trait, segment or tag cannot depend on itself, directly or through "
                     "others; break the chain")

    def section_of(self, name: str) -> str | None:
        for section in ("traits", "segments", "tags"):
            if (section, name) in self.rulebook.origins:
                return section
        if name.startswith("health"):
            return "health"
        return None

    def node_binding(self, name: str) -> Binding:
        node = self.ensure(name)
        return Binding(col(name), node.type, f"node:{name}")


def names_at(rulebook: Rulebook, level: Entity) -> Iterable[str]:
    """Names of traits, dimensions and tags computed for one entity level."""
    for section in (rulebook.traits, rulebook.dimensions, rulebook.tags):
        for name, item in section.items():
            if item.entity == level:
                yield name
