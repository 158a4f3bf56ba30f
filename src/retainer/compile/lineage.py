"""Which source fields each element of the rulebook depends on, and the purpose check.

Every expression of the rulebook is bound again through the compiler's own scopes, so a name
means here exactly what it means in the compiled SQL; the references a bound sqlglot tree
carries (`node:<name>`, `column:<source>.<column>`) become the edges of a graph from elements
(traits, segments, tags, health, playbooks, syncs) to other elements and to source fields.
Walking it gives every field an element depends on, and the chain that leads there
(`playbook winback → segment lifecycle.at_risk → trait tickets_30d → tickets.body`).

What counts as a dependency is what shapes a value or decides who is in a segment:
* the columns an expression reads, through derived traits, roll-ups and `where` filters;
* for an aggregate, the source's time column (windows and `as_of` filter on it) and the id
  columns that attribute a row to its entity (through the contact, and the identity map);
* for a segment, the rules before it as well: it is reached only when they do not match;
* for playbooks and syncs, the entity's id (it leaves the system with every record), their
  trigger, condition, the fields their templates and columns show, and the people they
  reach (contacts' role, account and email).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlglot import exp

from retainer.compile.catalog import Catalog
from retainer.compile.context import Context, Node, names_at
from retainer.compile.plan import Plan
from retainer.compile.scopes import AggregateScope, EntityScope
from retainer.errors import Problem, RetainerError, did_you_mean
from retainer.rulebook import expressions
from retainer.rulebook.destination_models import Sync
from retainer.rulebook.expressions import ExpressionError
from retainer.rulebook.fields import Entity
from retainer.rulebook.loader import Rulebook
from retainer.rulebook.models import AggregateTrait
from retainer.rulebook.playbook_models import MessageAction, Playbook, TaskAction, WebhookAction

ElementKind = Literal["trait", "dimension", "segment", "tag", "health", "component", "band",
                      "playbook", "sync"]
_NOW = datetime(2000, 1, 1)  # binding needs an as_of; lineage does not depend on it
_TEMPLATE_FIELD = re.compile(r"\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?)"
                             r"\s*(?::[^}]*)?\}")


@dataclass(frozen=True, order=True)
class Field:
    """A column of a source: `tickets.body`."""

    source: str
    column: str

    def __str__(self) -> str:
        return f"{self.source}.{self.column}"


@dataclass(frozen=True, order=True)
class Element:
    """Something the rulebook defines: `trait tickets_30d`, `segment lifecycle.at_risk`."""

    kind: ElementKind
    name: str

    def __str__(self) -> str:
        if self.kind == "component":
            return f"health.{self.name}"
        if self.kind in ("health", "band"):
            return self.name
        return f"{self.kind} {self.name}"


Dependency = Element | Field


@dataclass(frozen=True)
class Lineage:
    """The dependency graph of a rulebook: each element's direct dependencies."""

    edges: Mapping[Element, frozenset[Dependency]]

    def fields(self, element: Element) -> frozenset[Field]:
        """Every source field `element` depends on, directly or through other elements."""
        seen: set[Element] = set()
        found: set[Field] = set()
        pending = [element]
        while pending:
            current = pending.pop()
            if current in seen:
                continue
            seen.add(current)
            for dependency in self.edges.get(current, frozenset()):
                if isinstance(dependency, Field):
                    found.add(dependency)
                else:
                    pending.append(dependency)
        return frozenset(found)

    def chain(self, element: Element, target: Dependency) -> tuple[Dependency, ...]:
        """The shortest path from `element` to `target`, both included (empty if none).
        Ties go to the first path in name order, so the chain shown is always the same."""
        previous: dict[Dependency, Dependency | None] = {element: None}
        queue: deque[Dependency] = deque([element])
        while queue:
            current = queue.popleft()
            if current == target:
                path: list[Dependency] = []
                step: Dependency | None = current
                while step is not None:
                    path.append(step)
                    step = previous[step]
                return tuple(reversed(path))
            if isinstance(current, Element):
                for dependency in sorted(self.edges.get(current, frozenset()), key=_order):
                    if dependency not in previous:
                        previous[dependency] = current
                        queue.append(dependency)
        return ()

    def users(self, field: Field) -> list[Element]:
        """The elements that depend on `field`, in name order."""
        return sorted((e for e in self.edges if field in self.fields(e)), key=_order)

    def find(self, text: str) -> Element:
        """The element a person means: `tickets_30d`, `lifecycle.at_risk`, `health.usage`,
        `playbook winback` or `sync crm` (the kind is needed only when names clash)."""
        words = text.strip().replace(":", " ").split()
        kind, name = (words[0], words[1]) if len(words) == 2 else (None, text.strip())
        matches = [e for e in self.edges
                   if (kind is None or e.kind == kind) and (
                       str(e) == text.strip() or e.name == name
                       or (e.kind == "component" and f"health.{e.name}" == name))]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise RetainerError(f"'{text}' names more than one element: "
                                + ", ".join(str(m) for m in sorted(matches, key=_order)),
                                hint="put the kind first, e.g. 'playbook " + name + "'")
        names = [e.name if e.kind != "component" else f"health.{e.name}" for e in self.edges]
        raise RetainerError(f"no trait, segment, tag, health, playbook or sync named '{text}'",
                            hint=did_you_mean(name, names) or "'retainer lineage' lists "
                            "every playbook and sync")


def _order(item: Dependency) -> tuple[int, str]:
    return (1, str(item)) if isinstance(item, Field) else (0, str(item))


def trace(rulebook: Rulebook, catalog: Catalog) -> Lineage:
    """The lineage of every element of a rulebook that compiles against `catalog`."""
    return _Tracer(rulebook, catalog).lineage()


def field_lineage(rulebook: Rulebook, catalog: Catalog) -> dict[Element, frozenset[Field]]:
    """For every element, the set of source fields it depends on."""
    lineage = trace(rulebook, catalog)
    return {element: lineage.fields(element) for element in lineage.edges}


class _Tracer:
    def __init__(self, rulebook: Rulebook, catalog: Catalog) -> None:
        self.rulebook = rulebook
        self.ctx = Context(rulebook, catalog, _NOW, _NOW)
        self.edges: dict[Element, set[Dependency]] = {}
        # The scopes bind other elements through the context; their types do not matter
        # here (the compiler has checked them), so every element binds as 'unknown'.
        for level in ("account", "contact"):
            for name in names_at(rulebook, level):
                self.ctx.register(name, _stub(name, level))
        if rulebook.health is not None:
            for name in [*(f"health__{c}" for c in rulebook.health.components), "health",
                         "health_band"]:
                self.ctx.register(name, _stub(name, "account"))

    def lineage(self) -> Lineage:
        rulebook = self.rulebook
        for name, trait in rulebook.traits.items():
            self.edges[Element("trait", name)] = (
                self._aggregate(trait) if isinstance(trait, AggregateTrait)
                else self._refs(trait.expr, EntityScope(self.ctx, trait.entity)))
        for name, dimension in rulebook.dimensions.items():
            earlier: Element | None = None
            for rule in dimension.rules:
                segment = Element("segment", f"{name}.{rule.segment}")
                # A rule is tried only when the rules before it did not match.
                deps = self._refs(rule.when, EntityScope(self.ctx, dimension.entity)) \
                    if rule.when is not None else set()
                self.edges[segment] = deps | ({earlier} if earlier else set())
                earlier = segment
            self.edges[Element("dimension", name)] = {
                Element("segment", f"{name}.{rule.segment}") for rule in dimension.rules}
        for name, tag in rulebook.tags.items():
            self.edges[Element("tag", name)] = self._refs(tag.when,
                                                          EntityScope(self.ctx, tag.entity))
        if rulebook.health is not None:
            for key, component in rulebook.health.components.items():
                self.edges[Element("component", key)] = {Element("trait", component.trait)}
            self.edges[Element("health", "health")] = {
                Element("component", key) for key in rulebook.health.components}
            self.edges[Element("band", "health_band")] = {Element("health", "health")}
        for name, playbook in rulebook.playbooks.items():
            self.edges[Element("playbook", name)] = self._playbook(playbook)
        for name, sync in rulebook.syncs.items():
            self.edges[Element("sync", name)] = self._sync(sync)
        known = set(self.edges)
        return Lineage({element: frozenset(d for d in deps
                                           if isinstance(d, Field) or d in known)
                        for element, deps in self.edges.items()})

    # --- references ----------------------------------------------------------------------

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
                found.add(self._element(ref.removeprefix("node:")))
            elif ref.startswith("column:"):
                owner, column = ref.removeprefix("column:").split(".", 1)
                # Entity scopes name the entity (`account.tier`), aggregates the source.
                source = self._entity_source(owner) if entity_scope else owner
                if source is not None:
                    found.add(Field(source, column))
        return found

    def _element(self, name: str) -> Element:
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

    def _entity_source(self, level: str) -> str | None:
        return {"account": self.ctx.accounts, "contact": self.ctx.contacts}.get(level)

    # --- aggregates ----------------------------------------------------------------------

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
            return deps | self._contact_account()
        # The ids that take a row to its entity, and to the contact or account whose
        # columns `where` reads.
        if trait.entity == "contact" or scope.joined["contact"]:
            deps |= self._column(source, spec.contact or "")
        if trait.entity == "account" or scope.joined["account"]:
            if spec.account is not None:
                deps |= {Field(source, spec.account), *self._aliases()}
            elif spec.contact is not None:  # the row reaches its account through its contact
                deps |= {Field(source, spec.contact), *self._contact_account()}
        return deps

    def _contact_account(self) -> set[Dependency]:
        """Which account a contact belongs to."""
        contacts = self.ctx.contacts
        spec = self.rulebook.sources[contacts] if contacts else None
        if contacts is None or spec is None or spec.account is None:
            return set()
        return {Field(contacts, spec.account), *self._aliases()}

    def _aliases(self) -> set[Dependency]:
        """The identity map, when account ids pass through it."""
        name = self.ctx.identities
        if name is None:
            return set()
        spec = self.rulebook.sources[name]
        return {Field(name, column) for column in (spec.alias, spec.account) if column}

    def _keys(self, level: Entity) -> set[Dependency]:
        """The id a record about an entity carries."""
        source = self._entity_source(level)
        key = self.rulebook.sources[source].key if source else None
        deps: set[Dependency] = {Field(source, key)} if source and key else set()
        return deps | (self._contact_account() if level == "contact" else set())

    # --- playbooks and syncs -------------------------------------------------------------

    def _playbook(self, playbook: Playbook) -> set[Dependency]:
        level = playbook.entity
        deps = self._keys(level) | self._condition(playbook.when, level)
        if playbook.on is not None:
            deps |= self._segment(playbook.on.segment)
        for action in playbook.actions:
            body = action.body
            if isinstance(body, TaskAction):
                deps |= self._template(body.title, level) | self._template(body.note, level)
                if body.owner is not None:
                    deps |= self._result(body.owner, level)
                if body.owner_role is not None:  # the task names that contact
                    deps |= self._people(roles=True, email=True)
            elif isinstance(body, MessageAction):
                deps |= self._people(roles=body.roles is not None, email=True)
                deps |= {d for name in body.fields for d in self._result(name, level)}
                deps |= {d for name in body.contact_fields
                         for d in self._column(self.ctx.contacts, name)}
            elif isinstance(body, WebhookAction):
                deps |= {d for name in body.fields for d in self._result(name, level)}
            if level == "contact" and not isinstance(body, MessageAction):
                deps |= self._people(roles=False, email=True)  # the contact it is about
        return deps

    def _sync(self, sync: Sync) -> set[Dependency]:
        level = sync.entity
        deps = self._keys(level) | self._condition(sync.where, level)
        for column in sync.columns or self._default_columns(level):
            deps |= self._result(column, level)
        return deps

    def _default_columns(self, level: Entity) -> list[str]:
        """What a sync sends when it names no columns: segments, tags and health."""
        rulebook = self.rulebook
        names = [n for n, d in rulebook.dimensions.items() if d.entity == level]
        names += [n for n, t in rulebook.tags.items() if t.entity == level]
        if level == "account" and rulebook.health is not None:
            names += ["health", "health_band"]
        return names

    def _segment(self, text: str) -> set[Dependency]:
        """A trigger's `dimension.segment` or tag."""
        dimension, _, segment = text.partition(".")
        if dimension in self.rulebook.dimensions:
            element = Element("segment", text) if segment else Element("dimension", text)
            return {element}
        if text in self.rulebook.tags:
            return {Element("tag", text)}
        return set()

    def _condition(self, text: str | None, level: Entity) -> set[Dependency]:
        """The results columns a playbook's `when` or a sync's `where` reads."""
        if text is None:
            return set()
        try:
            tree = expressions.parse(text)
        except ExpressionError:
            return set()  # reported by the playbook and sync checks
        deps: set[Dependency] = set()
        for column in tree.find_all(exp.Column):
            qualifier = column.table.lower()
            deps |= self._result(f"{qualifier}.{column.name}" if qualifier else column.name,
                                 level)
        return deps

    def _template(self, text: str | None, level: Entity) -> set[Dependency]:
        """The results columns a `{name}` template shows."""
        deps: set[Dependency] = set()
        for name in _TEMPLATE_FIELD.findall(text or ""):
            deps |= self._result(name, level)
        return deps

    def _result(self, name: str, level: Entity) -> set[Dependency]:
        """A column of the published results by the name playbooks and syncs use: an
        element, `health.<component>` (or `health__<component>`), an included or key
        column, or (for a contact) `account.<column>` of its account's results."""
        qualifier, _, column = name.rpartition(".")
        if qualifier == "" and column.startswith("account__") and level == "contact":
            qualifier, column = "account", column.removeprefix("account__")
        if qualifier == "health" or column.startswith("health__"):
            component = column.removeprefix("health__")
            health = self.rulebook.health
            return {Element("component", component)} \
                if health and component in health.components else set()
        if qualifier == "account" and level == "contact":
            return self._result(column, "account")
        if qualifier not in ("", level):
            return set()
        if column in set(names_at(self.rulebook, level)):
            return {self._element(column)}
        if level == "account" and column in ("health", "health_band") and self.rulebook.health:
            return {self._element(column)}
        source = self._entity_source(level)
        return self._column(source, column)

    def _column(self, source: str | None, column: str) -> set[Dependency]:
        if source is None or not self.ctx.catalog.has(source, column):
            return set()
        return {Field(source, column)}

    def _people(self, roles: bool, email: bool) -> set[Dependency]:
        """Who an action reaches: the account's contacts (by role), and their address."""
        contacts = self.ctx.contacts
        if contacts is None:
            return set()
        spec = self.rulebook.sources[contacts]
        deps = self._keys("contact")
        if roles and spec.role:
            deps.add(Field(contacts, spec.role))
        if email and spec.email:
            deps.add(Field(contacts, spec.email))
        return deps


def _stub(name: str, level: Entity) -> Callable[[], Node]:
    return lambda: Node(name, level, "trait")


# --- the purpose check -----------------------------------------------------------------------

def purpose_problems(rulebook: Rulebook, plan: Plan, catalog: Catalog) -> list[Problem]:
    """Playbooks and syncs that use a field whose provenance does not allow their purpose
    (see retainer.privacy.purposes)."""
    from retainer.privacy.purposes import purpose_problems as check
    return check(rulebook, plan, catalog)
