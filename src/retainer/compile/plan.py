"""Compile a rulebook into a Plan: an ordered list of named steps, each a sqlglot tree.

    staging views/tables → one aggregate pass per source and entity → contact pipeline
    → roll-ups over contacts → account pipeline → quality report → published outputs

A Plan is data: `retainer compile` prints it in any dialect, the engine executes it, and
tests compare it with golden files.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, Literal

from sqlglot import exp

from retainer.compile import aggregates, elements, entity, quality, staging
from retainer.compile.capabilities import DIALECTS
from retainer.compile.catalog import Catalog
from retainer.compile.context import RESERVED, Context, Node
from retainer.compile.sql import ACCOUNT, CONTACT, alias, col, literal
from retainer.errors import ValidationError, did_you_mean
from retainer.rulebook.fields import Entity
from retainer.rulebook.loader import Rulebook
from retainer.rulebook.models import AggregateTrait

StepKind = Literal["view", "table", "output"]


@dataclass(frozen=True)
class Step:
    name: str
    kind: StepKind
    query: exp.Query
    purpose: str

    def statement(self, dialect: str) -> str:
        """The step as SQL in `dialect` (a DROP first where CREATE OR REPLACE TABLE is not
        valid, as in PostgreSQL)."""
        kind = "VIEW" if self.kind == "view" else "TABLE"
        replace = kind == "VIEW" or DIALECTS[dialect].create_or_replace_table
        create = exp.Create(this=exp.to_table(self.name), kind=kind, expression=self.query,
                            replace=replace)
        sql = create.sql(dialect=dialect, pretty=True)
        if replace:
            return sql
        drop = exp.Drop(tables=[exp.to_table(self.name)], kind=kind, exists=True)
        return drop.sql(dialect=dialect) + ";\n" + sql


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...]
    explain: dict[str, Any]
    as_of: datetime
    rulebook_hash: str
    state_machines: tuple[str, ...] = ()   # dimensions that read `previous_state`
    sources: tuple[str, ...] = ()          # the sources the plan reads

    def work(self) -> Iterator[Step]:
        return (s for s in self.steps if s.kind != "output")

    def outputs(self) -> Iterator[Step]:
        return (s for s in self.steps if s.kind == "output")

    def sql(self, dialect: str = "duckdb") -> str:
        parts = [f"-- {step.name}: {step.purpose}\n{step.statement(dialect)};"
                 for step in self.steps]
        return "\n\n".join(parts) + "\n"


def compile_plan(rulebook: Rulebook, catalog: Catalog, as_of: datetime,
                 clock: datetime | None = None, dialect: str = "duckdb") -> Plan:
    """Validate against the catalog and compile. Raises ValidationError with every problem.

    `dialect` selects the capabilities the trees are shaped for; rendering to that dialect
    happens only when the plan is printed or executed.
    """
    ctx = Context(rulebook, catalog, as_of, clock or as_of, DIALECTS[dialect])
    _check_sources(ctx)
    if ctx.problems:
        raise ValidationError(ctx.problems)
    _check_names(ctx)
    passes = aggregates.Passes(ctx)
    _register(ctx, passes)
    for name in list(ctx.binders):
        ctx.ensure(name)
    if ctx.problems:
        raise ValidationError(ctx.problems)
    machines = tuple(n for n, d in rulebook.dimensions.items() if d.state_machine is not None)
    steps = tuple(_steps(ctx, passes))
    read = [ctx.accounts, ctx.contacts, ctx.identities,
            *(p.source for p in passes.source_passes())]
    return Plan(steps, _explain(ctx), as_of, rulebook.content_hash, machines,
                tuple(dict.fromkeys(name for name in read if name)))


# --- checks ----------------------------------------------------------------------------------

def _check_sources(ctx: Context) -> None:
    rulebook = ctx.rulebook
    for kind, needed in (("accounts", True), ("contacts", False), ("identities", False)):
        names = [n for n, s in rulebook.sources.items() if s.kind == kind]
        if needed and not names:
            ctx.problem("no source of kind 'accounts'", rulebook.origin(
                "sources", next(iter(rulebook.sources))).location if rulebook.sources else None,
                "declare the entity table, e.g. accounts: {kind: accounts, from: "
                "data/accounts.csv, key: account_id}")
        for extra in names[1:]:
            ctx.problem(f"more than one source of kind '{kind}'",
                        rulebook.origin("sources", extra).location,
                        f"keep one; '{names[0]}' is already the {kind} source")
    for name, source in rulebook.sources.items():
        origin = rulebook.origin("sources", name)
        if name not in ctx.catalog.columns:
            continue  # the engine reports unreadable sources itself
        available = ctx.catalog.names(name)
        for option in ("key", "account", "contact", "time", "role", "alias"):
            column = getattr(source, option)
            if column is not None and column not in available:
                ctx.problem(
                    f"source '{name}': column '{column}' ({option}) does not exist in "
                    f"{ctx.catalog.described.get(name, name)}", origin.at(option),
                    (did_you_mean(column, available) or "") +
                    " columns there: " + ", ".join(available))
        if source.time and source.time in available:
            kind = ctx.catalog.type_of(name, source.time)
            if kind not in ("timestamp", "date", "text", "unknown"):
                ctx.problem(f"source '{name}': time column '{source.time}' holds "
                            f"{ctx.catalog.engine_type(name, source.time)} values",
                            origin.at("time"), "the time column must hold timestamps, "
                            "dates or ISO-8601 text")
        if source.kind != "contacts" and source.account is None and source.contact is not None \
                and ctx.contacts is None and source.kind not in ("consents",):
            ctx.problem(f"source '{name}' finds its account through contacts, but there is "
                        "no contacts source", origin.location,
                        "add a source of kind 'contacts' or an 'account' column")


def _check_names(ctx: Context) -> None:
    seen: dict[str, str] = {}
    rulebook = ctx.rulebook
    for section in ("traits", "segments", "tags"):
        for name in getattr(rulebook, {"segments": "dimensions"}.get(section, section)):
            origin = rulebook.origin(section, name)
            if name in RESERVED or name.startswith("health_"):
                ctx.problem(f"'{name}' is a reserved name", origin.location,
                            "choose another name (health, health_band, health_*, as_of, "
                            "account and contact are built in)")
            elif name in seen:
                ctx.problem(f"'{name}' is used by both a {seen[name][:-1]} and a "
                            f"{section[:-1]}", origin.location,
                            "traits, segment dimensions and tags share one namespace; "
                            "rename one")
            seen.setdefault(name, section)
    contact_level = [n for n, t in rulebook.traits.items() if t.entity == "contact"] + [
        n for n, d in rulebook.dimensions.items() if d.entity == "contact"] + [
        n for n, t in rulebook.tags.items() if t.entity == "contact"]
    if contact_level and ctx.contacts is None:
        section = ctx.section_of(contact_level[0]) or "traits"
        ctx.problem(f"'{contact_level[0]}' is computed per contact, but there is no contacts "
                    "source", rulebook.origin(section, contact_level[0]).location,
                    "add a source of kind 'contacts'")


# --- binding ---------------------------------------------------------------------------------

def _register(ctx: Context, passes: aggregates.Passes) -> None:
    rulebook = ctx.rulebook
    for name, trait in rulebook.traits.items():
        if isinstance(trait, AggregateTrait):
            ctx.register(name, partial(aggregates.bind_aggregate, ctx, passes, name, trait))
        else:
            ctx.register(name, partial(elements.bind_derived, ctx, name, trait))
    for name, dimension in rulebook.dimensions.items():
        ctx.register(name, partial(elements.bind_dimension, ctx, name, dimension))
    for name, tag in rulebook.tags.items():
        ctx.register(name, partial(elements.bind_tag, ctx, name, tag))
    health = rulebook.health
    if health is not None:
        bound: dict[str, Node] = {}

        def health_node(name: str) -> Node:
            if not bound:
                bound.update({n.name: n for n in elements.bind_health(ctx, health)})
            return bound[name]

        for name in [*(f"health__{c}" for c in health.components), "health", "health_band"]:
            ctx.register(name, partial(health_node, name))


# --- steps -----------------------------------------------------------------------------------

def _steps(ctx: Context, passes: aggregates.Passes) -> Iterator[Step]:
    identities = staging.identities_step(ctx)
    if identities is not None:
        yield Step("stg_identities", "view", identities, "alias ids → account ids")
    yield Step(staging.rows_relation("account"), "table",
               staging.entity_rows_step(ctx, ctx.accounts, ACCOUNT),
               "every account row, ranked per id")
    yield Step("stg_accounts", "table", staging.entity_step(ctx, ACCOUNT),
               "one row per account id")
    if ctx.can_be_later("account"):
        yield Step(staging.later_relation("account"), "table", staging.later_ids_step("account"),
                   "account ids that exist only after as_of")
    if ctx.contacts is not None:
        yield Step(staging.rows_relation("contact"), "table",
                   staging.entity_rows_step(ctx, ctx.contacts, CONTACT),
                   "every contact row, ranked per id, with its account")
        yield Step("stg_contacts", "table", staging.entity_step(ctx, CONTACT),
                   "one row per contact id, with its account")
        if ctx.can_be_later("contact"):
            yield Step(staging.later_relation("contact"), "table",
                       staging.later_ids_step("contact"), "contact ids that exist only after as_of")
    source_passes = passes.source_passes()
    for item in source_passes:
        yield Step(item.staged, "view", staging.source_step(ctx, item),
                   f"{item.source} rows with resolved ids and UTC time, per {item.level}")
    for item in sorted(source_passes,
                       key=lambda p: (p.level != "contact", p.source, p.windowed)):
        kind = "windowed trait(s)" if item.windowed else "trait(s)"
        yield Step(item.relation, "table", aggregates.pass_query(ctx, item),
                   f"{len(item.traits)} {kind} of {item.source} per {item.level}, one pass")
    levels: list[Entity] = ["account"]
    if (ctx.contacts is not None and any(n.level == "contact" for n in ctx.nodes.values())) \
            or passes.rollups():
        levels.insert(0, "contact")
    for level in levels:
        if level == "account":
            for item in passes.rollups():
                yield Step(item.relation, "table", aggregates.pass_query(ctx, item),
                           "roll-up of contacts per account")
        yield Step(f"run_{level}", "table",
                   entity.pipeline_query(ctx, level, [*source_passes, *passes.rollups()]),
                   f"traits, health, segments and tags per {level}")
    yield Step("run_quality", "table", quality.quality_step(ctx, source_passes),
               "rows read and rejected per source")
    for level in levels:
        results, reasons = _outputs(ctx, level)
        yield Step(f"{level}_results", "output", results, f"published results per {level}")
        yield Step(f"{level}_reasons", "output", reasons, f"clause values behind each {level}'s"
                   " segments and tags")
    yield Step("data_quality", "output", exp.select(exp.Star()).from_("run_quality"),
               "published quality report")


def _outputs(ctx: Context, level: Entity) -> tuple[exp.Select, exp.Select]:
    rulebook = ctx.rulebook
    columns: list[exp.Expr] = []
    if level == "account":
        columns.append(alias(col(ACCOUNT), rulebook.key_column("account")))
    else:
        contacts = rulebook.sources[ctx.contacts or ""]
        columns += [alias(col(CONTACT), rulebook.key_column("contact")),
                    alias(col(ACCOUNT), rulebook.contact_account_column())]
        if contacts.role:
            columns.append(alias(col(f"contact__{contacts.role}"), contacts.role))
    columns += [alias(col(f"{level}__{name}"), name) for name in _included(ctx, level)]
    public = [n for n in ctx.nodes.values() if n.level == level and n.kind != "component"]
    order = {"trait": 0, "health": 1, "band": 2, "dimension": 4, "tag": 5}
    components = [n for n in ctx.nodes.values() if n.kind == "component" and n.level == level]
    ranked = sorted(public, key=lambda n: order[n.kind])
    names = [n.name for n in ranked if n.kind in ("trait", "health", "band")]
    names += [n.name for n in components]
    names += [n.name for n in ranked if n.kind in ("dimension", "tag")]
    columns += [col(name) for name in names]
    columns.append(alias(ctx.as_of_sql(), "as_of"))
    results = exp.select(*columns).from_(f"run_{level}")
    flags = [alias(col(c.alias), c.alias) for n in ctx.nodes.values() if n.level == level
             for c in n.columns if isinstance(c, exp.Alias) and c.alias.startswith("__")]
    used = sorted({use["column"] for n in ctx.nodes.values() if n.level == level
                   for use in _all_uses(n) if "__" in use["column"]
                   and use["column"].split("__")[0] in ("account", "contact")})
    key = CONTACT if level == "contact" else ACCOUNT
    machine = [col(f"__{part}__{name}") for name, d in rulebook.dimensions.items()
               if d.state_machine is not None and d.entity == level
               for part in ("prev", "since")]
    reasons = exp.select(alias(col(key), "__key"), *flags, *machine,
                         *(col(u) for u in used)).from_(f"run_{level}")
    return results, reasons


def _included(ctx: Context, level: Entity) -> list[str]:
    if level != "account":
        return []
    return list(ctx.rulebook.config.output.include)


def _all_uses(node: Node) -> Iterator[dict[str, str]]:
    explain = node.explain
    for rule in explain.get("rules", []):
        for clause in rule.get("clauses", []):
            yield from clause["uses"]
    for clause in explain.get("clauses", []):
        yield from clause["uses"]


def _explain(ctx: Context) -> dict[str, Any]:
    """Everything `explain` needs besides the stored values, stored with the run."""
    levels: dict[str, Any] = {}
    for level in ("account", "contact"):
        nodes = [n for n in ctx.nodes.values() if n.level == level]
        if not nodes:
            continue
        levels[level] = {
            "traits": {n.name: n.explain.get("definition", "") for n in nodes
                       if n.kind == "trait"},
            "dimensions": {n.name: n.explain["rules"] for n in nodes
                           if n.kind == "dimension"},
            "state_machines": {n.name: n.explain["state_machine"] for n in nodes
                               if "state_machine" in n.explain},
            "tags": {n.name: n.explain for n in nodes if n.kind == "tag"},
        }
    health = [n.explain for n in ctx.nodes.values() if n.kind == "component"]
    band = ctx.nodes.get("health_band")
    if health and band is not None:
        levels["account"]["health"] = {"components": health,
                                       "bands": band.explain["bands"]}
    return {"levels": levels, "rulebook_hash": ctx.rulebook.content_hash,
            "as_of": ctx.as_of.isoformat(sep=" ")}


__all__ = ["Plan", "Step", "compile_plan", "literal"]
