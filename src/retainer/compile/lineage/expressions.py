"""What traits, segments, tags and health read, found by binding their expressions again.

Every expression is bound through the compiler's own scopes, so a name means here exactly
what it means in the compiled SQL; the references a bound sqlglot tree carries
(`node:<name>`, `column:<source>.<column>`) become the edges.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from retainer.compile.catalog import Catalog
from retainer.compile.context import Context, Node, names_at
from retainer.compile.lineage.graph import Dependency, Element, Field
from retainer.compile.scopes import AggregateScope, EntityScope
from retainer.rulebook import expressions
from retainer.rulebook.expressions import ExpressionError
from retainer.rulebook.fields import Entity
from retainer.rulebook.loader import Rulebook
from retainer.rulebook.models import AggregateTrait

_NOW = datetime(2000, 1, 1)  # binding needs an as_of; lineage does not depend on it


class ExpressionTracer:
    """The edges of traits, segments, tags and health, and the lookups of elements, source
    fields and ids that playbooks and syncs share."""

    def __init__(self, rulebook: Rulebook, catalog: Catalog) -> None:
        self.rulebook = rulebook
        self.ctx = Context(rulebook, catalog, _NOW, _NOW)
        # The scopes bind other elements through the context; their types do not matter
        # here (the compiler has checked them), so every element binds as 'unknown'.
        for level in ("account", "contact"):
            for name in names_at(rulebook, level):
                self.ctx.register(name, _stub(name, level))
        if rulebook.health is not None:
            for name in [*(f"health__{c}" for c in rulebook.health.components), "health",
                         "health_band"]:
                self.ctx.register(name, _stub(name, "account"))

    def edges(self) -> dict[Element, set[Dependency]]:
        """Each trait, dimension, segment, tag and health element's direct dependencies."""
        rulebook = self.rulebook
        edges: dict[Element, set[Dependency]] = {}
        for name, trait in rulebook.traits.items():
            edges[Element("trait", name)] = (
                self._aggregate(trait) if isinstance(trait, AggregateTrait)
                else self._refs(trait.expr, EntityScope(self.ctx, trait.entity)))
        for name, dimension in rulebook.dimensions.items():
            earlier: Element | None = None
            for rule in dimension.rules:
                segment = Element("segment", f"{name}.{rule.segment}")
                # A rule is tried only when the rules before it did not match.
                deps = self._refs(rule.when, EntityScope(self.ctx, dimension.entity)) \
                    if rule.when is not None else set()
                edges[segment] = deps | ({earlier} if earlier else set())
                earlier = segment
            edges[Element("dimension", name)] = {
                Element("segment", f"{name}.{rule.segment}") for rule in dimension.rules}
        for name, tag in rulebook.tags.items():
            edges[Element("tag", name)] = self._refs(tag.when, EntityScope(self.ctx, tag.entity))
        if rulebook.health is not None:
            for key, component in rulebook.health.components.items():
                edges[Element("component", key)] = {Element("trait", component.trait)}
            edges[Element("health", "health")] = {
                Element("component", key) for key in rulebook.health.components}
            edges[Element("band", "health_band")] = {Element("health", "health")}
        return edges

    # --- lookups -------------------------------------------------------------------------

    def element(self, name: str) -> Element:
        """The element a results column or a bound `node:` reference is named after."""
        if name == "health":
            return Element("health", "health")
        if name == "health_band":
            return Element("band", "health_band")
        if name.startswith("health__"):
            return Element("component", name.removeprefix("health__"))
        if name in self.rulebook.dimensions:
            return Element("dimension", name)
        if name in self.rulebook.tags:
            return Element("tag", name)
        return Element("trait", name)

    def entity_source(self, level: str) -> str | None:
        return {"account": self.ctx.accounts, "contact": self.ctx.contacts}.get(level)

    def column(self, source: str | None, column: str) -> set[Dependency]:
        if source is None or not self.ctx.catalog.has(source, column):
            return set()
        return {Field(source, column)}

    def contact_account(self) -> set[Dependency]:
        """Which account a contact belongs to."""
        contacts = self.ctx.contacts
        spec = self.rulebook.sources[contacts] if contacts else None
        if contacts is None or spec is None or spec.account is None:
            return set()
        return {Field(contacts, spec.account), *self._aliases()}

    # --- expressions and aggregates ------------------------------------------------------

    def _refs(self, text: str | None, scope: AggregateScope | EntityScope) -> set[Dependency]:
        """What an expression reads, as elements and fields."""
        if text is None:
            return set()
        try:
            bound = expressions.bind(expressions.parse(text), scope, text,
                                     self.ctx.as_of_sql)
        except ExpressionError:
            return set()  # the compiler reports it; lineage is traced for valid rulebooks
        entity_scope = isinstance(scope, EntityScope)
        found: set[Dependency] = set()
        for ref in bound.refs:
            if ref.startswith("node:"):
                found.add(self.element(ref.removeprefix("node:")))
            elif ref.startswith("column:"):
                owner, column = ref.removeprefix("column:").split(".", 1)
                # Entity scopes name the entity (`account.tier`), aggregates the source.
                source = self.entity_source(owner) if entity_scope else owner
                if source is not None:
                    found.add(Field(source, column))
        return found

    def _aggregate(self, trait: AggregateTrait) -> set[Dependency]:
        source = trait.source
        spec = self.rulebook.sources.get(source)
        if spec is None:
            return set()
        rollup = source == self.ctx.contacts and trait.entity == "account"
        scope = AggregateScope(self.ctx, source, rollup)
        deps = self._refs(trait.value, scope) | self._refs(trait.where, scope)
        if spec.time is not None:  # windows, and nothing after as_of, filter on it
            deps.add(Field(source, spec.time))
        if rollup:
            return deps | self.contact_account()
        # The ids that take a row to its entity, and to the contact or account whose
        # columns `where` reads.
        if trait.entity == "contact" or scope.joined["contact"]:
            deps |= self.column(source, spec.contact or "")
        if trait.entity == "account" or scope.joined["account"]:
            if spec.account is not None:
                deps |= {Field(source, spec.account), *self._aliases()}
            elif spec.contact is not None:  # the row reaches its account through its contact
                deps |= {Field(source, spec.contact), *self.contact_account()}
        return deps

    def _aliases(self) -> set[Dependency]:
        """The identity map, when account ids pass through it."""
        name = self.ctx.identities
        if name is None:
            return set()
        spec = self.rulebook.sources[name]
        return {Field(name, column) for column in (spec.alias, spec.account) if column}


def _stub(name: str, level: Entity) -> Callable[[], Node]:
    return lambda: Node(name, level, "trait")
