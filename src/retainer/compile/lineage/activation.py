"""What playbooks and syncs depend on: the results columns they read, and the people and ids
that leave the system with what they send.

They read the published results by column name (`health.usage`, `account.tier`), so each
name is resolved to the element or source column that fills it.
"""

from __future__ import annotations

import re

from sqlglot import exp

from retainer.compile.context import names_at
from retainer.compile.lineage.expressions import ExpressionTracer
from retainer.compile.lineage.graph import Dependency, Element, Field
from retainer.rulebook import expressions
from retainer.rulebook.destination_models import Sync
from retainer.rulebook.expressions import ExpressionError
from retainer.rulebook.fields import Entity
from retainer.rulebook.playbook_models import MessageAction, Playbook, TaskAction, WebhookAction

_TEMPLATE_FIELD = re.compile(r"\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?)"
                             r"\s*(?::[^}]*)?\}")


class ActivationTracer:
    """The edges of playbooks and syncs, resolved through `elements`' lookups."""

    def __init__(self, elements: ExpressionTracer) -> None:
        self.elements = elements
        self.rulebook = elements.rulebook
        self.contacts = elements.ctx.contacts

    def edges(self) -> dict[Element, set[Dependency]]:
        """Each playbook's and sync's direct dependencies."""
        edges: dict[Element, set[Dependency]] = {}
        for name, playbook in self.rulebook.playbooks.items():
            edges[Element("playbook", name)] = self._playbook(playbook)
        for name, sync in self.rulebook.syncs.items():
            edges[Element("sync", name)] = self._sync(sync)
        return edges

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
                         for d in self.elements.column(self.contacts, name)}
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
            return {self.elements.element(column)}
        if level == "account" and column in ("health", "health_band") and self.rulebook.health:
            return {self.elements.element(column)}
        return self.elements.column(self.elements.entity_source(level), column)

    def _keys(self, level: Entity) -> set[Dependency]:
        """The id a record about an entity carries."""
        source = self.elements.entity_source(level)
        key = self.rulebook.sources[source].key if source else None
        deps: set[Dependency] = {Field(source, key)} if source and key else set()
        return deps | (self.elements.contact_account() if level == "contact" else set())

    def _people(self, roles: bool, email: bool) -> set[Dependency]:
        """Who an action reaches: the account's contacts (by role), and their address."""
        contacts = self.contacts
        if contacts is None:
            return set()
        spec = self.rulebook.sources[contacts]
        deps = self._keys("contact")
        if roles and spec.role:
            deps.add(Field(contacts, spec.role))
        if email and spec.email:
            deps.add(Field(contacts, spec.email))
        return deps
