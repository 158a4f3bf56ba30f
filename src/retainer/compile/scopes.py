"""What names mean inside each kind of expression.

* Aggregate scope (a trait's `where` and value): the source's own columns, `contact.<column>`
  and `account.<column>` (joined on demand), `as_of`. A roll-up over contacts also sees the
  contacts' own traits, segments and tags.
* Entity scope (derived traits, segment rules, tags): traits, segments and tags of the same
  entity, `health`, `health_band`, `health.<component>`, the entity's columns (bare or
  `account.` / `contact.` qualified), and `as_of`.
"""

from __future__ import annotations

from collections.abc import Iterable

from retainer.compile.context import Context, names_at
from retainer.compile.sql import TIME, col
from retainer.rulebook.expressions import Binding
from retainer.rulebook.fields import Entity


class AggregateScope:
    def __init__(self, ctx: Context, source: str, rollup: bool = False) -> None:
        self.ctx = ctx
        self.source = source
        self.rollup = rollup
        self.joined: dict[str, set[str]] = {"account": set(), "contact": set()}

    def lookup(self, qualifier: str, name: str) -> Binding | None:
        ctx = self.ctx
        if not qualifier and name == "as_of":
            return ctx.as_of_binding()
        if self.rollup:
            return self._rollup(qualifier, name)
        if not qualifier and name == ctx.rulebook.sources[self.source].time:
            # The time column is read normalised to UTC, as windows see it.
            return Binding(col(TIME), "timestamp", f"column:{self.source}.{name}")
        if not qualifier and ctx.catalog.has(self.source, name):
            return Binding(col(name), ctx.catalog.type_of(self.source, name),
                           f"column:{self.source}.{name}")
        target = {"account": ctx.accounts, "contact": ctx.contacts}.get(qualifier)
        if target is None or not ctx.catalog.has(target, name):
            return None
        if qualifier == "contact" and not self.reaches_contacts():
            return None
        self.joined[qualifier].add(name)
        ctx.used_columns[qualifier].add(name)
        return Binding(col(f"{qualifier}__{name}"), ctx.catalog.type_of(target, name),
                       f"column:{target}.{name}")

    def _rollup(self, qualifier: str, name: str) -> Binding | None:
        ctx = self.ctx
        contacts = ctx.contacts
        assert contacts is not None
        if not qualifier and name in set(names_at(ctx.rulebook, "contact")):
            return ctx.node_binding(name)
        if qualifier in ("", "contact") and ctx.catalog.has(contacts, name):
            ctx.used_columns["contact"].add(name)
            return Binding(col(f"contact__{name}"), ctx.catalog.type_of(contacts, name),
                           f"column:{contacts}.{name}")
        return None

    def reaches_contacts(self) -> bool:
        source = self.ctx.rulebook.sources[self.source]
        return self.ctx.contacts is not None and source.contact is not None

    def candidates(self, qualifier: str) -> Iterable[str]:
        ctx = self.ctx
        if self.rollup:
            contacts = ctx.contacts or ""
            names = ctx.catalog.names(contacts)
            return [*names_at(ctx.rulebook, "contact"), *names] if not qualifier else names
        if not qualifier:
            return [*ctx.catalog.names(self.source), "as_of"]
        target = {"account": ctx.accounts, "contact": ctx.contacts}.get(qualifier)
        return ctx.catalog.names(target) if target else []

    def describe(self) -> str:
        if self.rollup:
            return "a roll-up over contacts (contact traits, segments, tags and columns)"
        return (f"source '{self.source}' (its columns, account.<column>"
                f"{', contact.<column>' if self.reaches_contacts() else ''}, as_of)")


class EntityScope:
    def __init__(self, ctx: Context, level: Entity) -> None:
        self.ctx = ctx
        self.level = level
        self.local = set(names_at(ctx.rulebook, level))

    def lookup(self, qualifier: str, name: str) -> Binding | None:
        ctx = self.ctx
        health = ctx.rulebook.health
        if not qualifier:
            if name == "as_of":
                return ctx.as_of_binding()
            if name in self.local:
                return ctx.node_binding(name)
            if self.level == "account" and health and name in ("health", "health_band"):
                return ctx.node_binding(name)
            qualifier = self.level
        if qualifier == "health" and self.level == "account" and health:
            if name in health.components:
                return ctx.node_binding(f"health__{name}")
            return None
        source = {"account": ctx.accounts, "contact": ctx.contacts}.get(qualifier)
        if source is None or (qualifier == "contact" and self.level != "contact"):
            return None
        if not ctx.catalog.has(source, name):
            return None
        ctx.used_columns[qualifier].add(name)
        if qualifier == "account" and self.level == "contact":
            ctx.account_columns_of_contacts.add(name)
        return Binding(col(f"{qualifier}__{name}"), ctx.catalog.type_of(source, name),
                       f"column:{qualifier}.{name}")

    def candidates(self, qualifier: str) -> Iterable[str]:
        ctx = self.ctx
        if qualifier == "health":
            return list(ctx.rulebook.health.components) if ctx.rulebook.health else []
        source = {"account": ctx.accounts, "contact": ctx.contacts}.get(qualifier or self.level)
        columns = ctx.catalog.names(source) if source else []
        if qualifier:
            return columns
        extra = ["health", "health_band"] if self.level == "account" and ctx.rulebook.health \
            else []
        return [*self.local, *extra, *columns, "as_of"]

    def describe(self) -> str:
        return f"{self.level} expressions"
