"""Checks of playbooks against the rulebook and the compiled plan, each pointing at the
file:line where the problem is written and suggesting a fix: triggers and outcomes name
real segments or tags, `when` compiles against the results, templates and fields name
results columns, owners, roles, destinations, stopped playbooks and contact columns exist,
and whatever reaches a person has a consents source to be checked against."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlglot import exp

from retainer.compile.catalog import Catalog
from retainer.compile.plan import Plan
from retainer.compile.sql import col
from retainer.compile.staging import src
from retainer.consent.records import REQUIRED_COLUMNS
from retainer.consent.sources import consent_source
from retainer.errors import Location, Problem, did_you_mean
from retainer.playbooks.columns import result_columns
from retainer.playbooks.conditions import ResultsScope, check_expression, template_fields
from retainer.rulebook.expressions import Type
from retainer.rulebook.loader import Rulebook
from retainer.rulebook.playbook_models import MessageAction, Playbook, TaskAction, WebhookAction


def problems(rulebook: Rulebook, plan: Plan, catalog: Catalog) -> list[Problem]:
    if not rulebook.playbooks:
        return []
    checker = _Checker(rulebook, catalog, result_columns(plan, catalog))
    for name, playbook in rulebook.playbooks.items():
        checker.playbook(name, playbook)
    checker.consent()
    return checker.found


@dataclass
class _Checker:
    rulebook: Rulebook
    catalog: Catalog
    columns: dict[str, dict[str, Type]]
    found: list[Problem] = field(default_factory=list)
    reaches_people: list[tuple[str, Location]] = field(default_factory=list)
    _roles: set[str] | None = None

    def problem(self, message: str, location: Location | None, hint: str | None = None
                ) -> None:
        self.found.append(Problem(message, location, hint))

    # --- one playbook ------------------------------------------------------------------

    def playbook(self, name: str, playbook: Playbook) -> None:
        origin = self.rulebook.origin("playbooks", name)
        level = playbook.entity
        contacts = self.rulebook.source_of_kind("contacts")
        if level == "contact" and contacts is None:
            self.problem(f"playbook '{name}' acts on contacts, but there is no contacts "
                         "source", origin.at("entity"), "add a source of kind 'contacts'")
            return
        if level not in self.columns:
            self.problem(f"playbook '{name}' acts on {level}s, but the rulebook computes "
                         f"nothing per {level}", origin.at("entity"),
                         "add a contact trait, segment or tag, or act on accounts")
            return
        if playbook.on is not None:
            self.segment(playbook.on.segment, level, origin.at("on", playbook.on.kind))
        if playbook.outcome is not None:
            for key, values in (("in", playbook.outcome.in_),
                                ("not_in", playbook.outcome.not_in)):
                for index, value in enumerate(values):
                    self.segment(value, level, origin.at("outcome", key, index))
        scope = ResultsScope(self.columns[level], level, self.columns.get("account")
                             if level == "contact" else None)
        if playbook.when is not None:
            error = check_expression(playbook.when, scope)
            if error is not None:
                self.problem(f"playbook '{name}': {error.message}",
                             origin.inside(("when",), error.offset), error.hint)
        for stopped in playbook.stops:
            self.stops(name, playbook, stopped, origin.at("stops", playbook.stops.index(
                stopped)))
        row = self.row_columns(level)
        if level == "contact":
            self.reaches_people.append((name, origin.at("entity")))
        for index, action in enumerate(playbook.actions):
            self.action(name, playbook, index, action.kind, action.body, row,
                        lambda *sub, i=index, k=action.kind: origin.at("actions", i, k, *sub))

    def row_columns(self, level: str) -> list[str]:
        """What a template or a field may name: the level's results columns (and, for a
        contact, its account's too)."""
        names = [c for c in self.columns[level] if "__" not in c]
        if level == "contact":
            names += [c for c in self.columns.get("account", {}) if c not in names
                      and "__" not in c]
        return names

    def segment(self, written: str, level: str, location: Location) -> None:
        dimension, dot, segment = written.partition(".")
        rulebook = self.rulebook
        if not dot:
            tag = rulebook.tags.get(written)
            if tag is None:
                choices = [*rulebook.tags, *(f"{d}.{r.segment}" for d, dim in
                                             rulebook.dimensions.items() for r in dim.rules)]
                self.problem(f"'{written}' is not a tag, nor a segment (dimension.segment)",
                             location, did_you_mean(written, choices) or
                             "tags: " + (", ".join(rulebook.tags) or "none"))
            elif tag.entity != level:
                self.problem(f"tag '{written}' is computed per {tag.entity}, but the "
                             f"playbook acts on {level}s", location,
                             f"set 'entity: {tag.entity}' on the playbook, or use an "
                             f"{level} tag")
            return
        found = rulebook.dimensions.get(dimension)
        if found is None:
            self.problem(f"unknown dimension '{dimension}' in '{written}'", location,
                         did_you_mean(dimension, rulebook.dimensions) or
                         "dimensions: " + ", ".join(rulebook.dimensions))
            return
        names = [r.segment for r in found.rules]
        if segment not in names:
            self.problem(f"'{segment}' is not a segment of {dimension}", location,
                         did_you_mean(segment, names) or "segments: " + ", ".join(names))
        elif found.entity != level:
            self.problem(f"dimension '{dimension}' is computed per {found.entity}, but the "
                         f"playbook acts on {level}s", location,
                         f"set 'entity: {found.entity}' on the playbook")

    def stops(self, name: str, playbook: Playbook, stopped: str, location: Location) -> None:
        target = self.rulebook.playbooks.get(stopped)
        if stopped == name:
            self.problem(f"playbook '{name}' stops itself", location,
                         "'stops' names other playbooks")
        elif target is None:
            self.problem(f"'{stopped}' is not a playbook", location,
                         did_you_mean(stopped, self.rulebook.playbooks) or
                         "playbooks: " + ", ".join(self.rulebook.playbooks))
        elif playbook.entity == "contact" and target.entity == "account":
            self.problem(f"contact playbook '{name}' cannot stop account playbook "
                         f"'{stopped}'", location,
                         "an account playbook can stop contact playbooks, not the reverse")

    # --- actions -----------------------------------------------------------------------

    def action(self, name: str, playbook: Playbook, index: int, kind: str, body: object,
               row: list[str], at: Callable[..., Location]) -> None:
        destination = getattr(body, "to", None)
        if destination is not None:
            self.destination(destination, kind, at("to"))
        if isinstance(body, TaskAction):
            for key in ("title", "note"):
                text = getattr(body, key)
                if text is not None:
                    self.template(text, row, at(key))
            if body.owner is not None and body.owner not in row:
                self.problem(f"task owner '{body.owner}' is not a column of the results",
                             at("owner"), did_you_mean(body.owner, row) or
                             "add the account column to 'output: include' in retainer.yml, "
                             "or use owner_role")
            if body.owner_role is not None:
                self.roles([body.owner_role], at("owner_role"))
                self.reaches_people.append((name, at("owner_role")))
        if isinstance(body, (MessageAction, WebhookAction)):
            for position, column in enumerate(body.fields):
                if column not in row:
                    self.problem(f"'{column}' is not a column of the results", at(
                        "fields", position), did_you_mean(column, row) or
                        "fields name traits, segments, tags, health or included columns")
        if isinstance(body, MessageAction):
            self.reaches_people.append((name, at()))
            if self.rulebook.source_of_kind("contacts") is None:
                self.problem("a message goes to contacts, but there is no contacts source",
                             at(), "add a source of kind 'contacts'")
                return
            if body.roles:
                self.roles(list(body.roles), at("roles"))
            contacts = self.rulebook.source_of_kind("contacts") or ""
            for position, column in enumerate(body.contact_fields):
                if not self.catalog.has(contacts, column):
                    self.problem(f"'{column}' is not a column of the contacts source",
                                 at("contact_fields", position),
                                 did_you_mean(column, self.catalog.names(contacts)) or
                                 "columns: " + ", ".join(self.catalog.names(contacts)))

    def destination(self, name: str, kind: str, location: Location) -> None:
        declared = self.rulebook.destinations
        if name not in declared:
            self.problem(f"no destination named '{name}'", location,
                         did_you_mean(name, declared) or (
                             "declared destinations: " + ", ".join(declared) if declared
                             else "declare it under 'destinations:' (docs/sync.md)"))
        elif kind == "webhook" and declared[name].type != "webhook":
            self.problem(f"a webhook action needs a webhook destination; '{name}' is "
                         f"{declared[name].type}", location,
                         "use a message or task action for other destinations")

    def template(self, text: str, row: list[str], location: Location) -> None:
        try:
            fields = template_fields(text)
        except ValueError as exc:
            self.problem(str(exc), location)
            return
        for name in fields:
            if name not in row:
                self.problem(f"template field '{{{name}}}' is not a column of the results",
                             location, did_you_mean(name, row) or
                             "fields name traits, segments, tags, health or included columns")

    def roles(self, wanted: Iterable[str], location: Location) -> None:
        known = self.known_roles()
        if known is None:
            self.problem("roles need a contacts source that declares 'role'", location,
                         "add 'role: <column>' to the contacts source")
            return
        for role in wanted:
            if known and role not in known:
                self.problem(f"no contact has role '{role}'", location,
                             did_you_mean(role, known) or "roles: " + ", ".join(sorted(known)))

    def known_roles(self) -> set[str] | None:
        """The roles present in the contacts source (None: it declares no role column)."""
        if self._roles is not None:
            return self._roles
        name = self.rulebook.source_of_kind("contacts")
        source = self.rulebook.sources.get(name or "")
        if source is None or source.role is None:
            return None
        from retainer.consent.sources import open_sources
        from retainer.errors import RetainerError
        try:
            with open_sources(self.rulebook, [name or ""]) as (engine, _):
                rows = engine.query(exp.select(exp.cast(col(source.role), "VARCHAR"))
                                    .distinct().from_(src(name or "")))
            self._roles = {str(r[0]) for r in rows if r[0] is not None}
        except RetainerError:
            self._roles = set()  # unreadable here: the run reports it
        return self._roles

    # --- consent -----------------------------------------------------------------------

    def consent(self) -> None:
        rulebook = self.rulebook
        settings = rulebook.consent
        origin = rulebook.origins.get(("consent", "consent"))
        named = settings.source
        if named is not None and (named not in rulebook.sources
                                  or rulebook.sources[named].kind != "consents"):
            choices = [n for n, s in rulebook.sources.items() if s.kind == "consents"]
            self.problem(f"consent source '{named}' is not a source of kind consents",
                         origin.at("source") if origin else None,
                         did_you_mean(named, choices) or "declare it with kind: consents")
            return
        contacts = rulebook.source_of_kind("contacts")
        if settings.jurisdiction is not None and contacts is not None and \
                not self.catalog.has(contacts, settings.jurisdiction):
            self.problem(f"consent jurisdiction '{settings.jurisdiction}' is not a column of "
                         f"the contacts source '{contacts}'",
                         origin.at("jurisdiction") if origin else None,
                         did_you_mean(settings.jurisdiction, self.catalog.names(contacts))
                         or "columns: " + ", ".join(self.catalog.names(contacts)))
        source = consent_source(rulebook)
        if source is None:
            for name, location in self.reaches_people[:1]:
                self.problem(f"playbook '{name}' reaches people, but there is no consents "
                             "source to check them against", location,
                             "declare a source of kind 'consents' (docs/consent.md)")
            return
        if not self.reaches_people or source not in self.catalog.columns:
            return
        for column in REQUIRED_COLUMNS:
            if not self.catalog.has(source, column):
                self.problem(f"the consents source '{source}' has no column '{column}'",
                             rulebook.origin("sources", source).location,
                             "a consents source has columns purpose, channel and status "
                             "(granted, denied or withdrawn), and optionally legal_basis, "
                             "jurisdiction and source (see docs/consent.md)")
