"""The purpose check: a playbook or sync may use only fields whose declared provenance allows
its purpose. Fields without declared purposes are unrestricted. `retainer validate` runs it
over the lineage the compiler traces (retainer.checks), and so do `act` and `sync`."""

from __future__ import annotations

from collections.abc import Iterable

from retainer.compile.catalog import Catalog
from retainer.compile.lineage import trace
from retainer.compile.lineage.graph import Dependency, Element, Field
from retainer.compile.plan import Plan
from retainer.errors import Problem, did_you_mean
from retainer.rulebook.loader import Rulebook


def purpose_problems(rulebook: Rulebook, plan: Plan, catalog: Catalog) -> list[Problem]:
    """Playbooks and syncs that use a field whose provenance does not allow their purpose,
    and provenance declared for columns a source does not have."""
    problems = list(_declaration_problems(rulebook, catalog))
    if problems or not (rulebook.playbooks or rulebook.syncs):
        return problems
    lineage = trace(rulebook, catalog)
    users: list[tuple[Element, str, str]] = [
        *((Element("playbook", n), p.purpose, "playbooks") for n, p in rulebook.playbooks.items()),
        *((Element("sync", n), s.purpose, "syncs") for n, s in rulebook.syncs.items())]
    for element, purpose, section in users:
        # Fields refused by the same declaration and reached the same way are one problem.
        groups: dict[tuple[str, tuple[Dependency, ...]], list[Field]] = {}
        for field in sorted(lineage.fields(element)):
            if allows(rulebook, field, purpose):
                continue
            route = lineage.chain(element, field)[:-1]
            groups.setdefault((_declared_at(rulebook, field), route), []).append(field)
        for (declared, route), fields in groups.items():
            provenance = rulebook.sources[fields[0].source].provenance_of(fields[0].column)
            assert provenance is not None and provenance.purposes is not None
            named = _and([str(f) for f in fields])
            chain = " → ".join([*(str(step) for step in route),
                                ", ".join(str(f) for f in fields)])
            allowed = ", ".join(provenance.purposes) or "no purpose"
            them = "it" if len(fields) == 1 else "them"
            problems.append(Problem(
                f"{element.kind} '{element.name}' (purpose {purpose}) uses {named}, which "
                f"may be used only for {allowed}: {chain}",
                rulebook.origin(section, element.name).location,
                f"if {purpose} is a lawful use of {named}, add it to the purposes declared "
                f"at {declared}; otherwise stop using {them} in this {element.kind}"))
    return problems


def allows(rulebook: Rulebook, field: Field, purpose: str) -> bool:
    """Whether a field may be used for a purpose: its declared purposes include it, or it
    declares none (unrestricted)."""
    provenance = rulebook.sources[field.source].provenance_of(field.column)
    return provenance is None or provenance.purposes is None or purpose in provenance.purposes


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _declared_at(rulebook: Rulebook, field: Field) -> str:
    origin = rulebook.origin("sources", field.source)
    source = rulebook.sources[field.source]
    path: tuple[str, ...] = ("columns", field.column, "purposes") \
        if field.column in source.columns else ("provenance", "purposes")
    return f"{origin.at(*path)} (sources: {field.source}: {': '.join(path)})"


def _declaration_problems(rulebook: Rulebook, catalog: Catalog) -> Iterable[Problem]:
    """Provenance for a column that does not exist, or an email column that does not."""
    for name, source in rulebook.sources.items():
        if name not in catalog.columns:
            continue
        available = catalog.names(name)
        origin = rulebook.origin("sources", name)
        for column in source.columns:
            if column not in available:
                yield Problem(f"source '{name}' declares provenance for column '{column}', "
                              "which it does not have", origin.positions.key(
                                  (*origin.path, "columns", column)),
                              did_you_mean(column, available)
                              or "columns there: " + ", ".join(available))
        if source.email is not None and source.email not in available:
            yield Problem(f"source '{name}': column '{source.email}' (email) does not exist",
                          origin.at("email"), did_you_mean(source.email, available)
                          or "columns there: " + ", ".join(available))
