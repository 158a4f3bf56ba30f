"""The per-entity pipeline: staged entity rows joined with their aggregates, then one CTE
layer per dependency depth (derived traits, health, segments, tags)."""

from __future__ import annotations

from sqlglot import exp

from retainer.compile.aggregates import Pass
from retainer.compile.context import Context, Node
from retainer.compile.graph import layers
from retainer.compile.sql import ACCOUNT, CONTACT, TIME, alias, col
from retainer.compile.staging import entity_columns
from retainer.rulebook.fields import Entity


def pipeline_query(ctx: Context, level: Entity, passes: list[Pass]) -> exp.Select:
    nodes = [n for n in ctx.nodes.values() if n.level == level]
    base = _base(ctx, level, [p for p in passes if p.level == level], nodes)
    computed = {n.name: n for n in nodes if not n.aggregate}
    depth = layers({name: {d for d in n.deps if d in computed} for name, n in computed.items()})
    ctes: list[tuple[str, exp.Select]] = [("base", base)]
    for number in range(1, max(depth.values(), default=0) + 1):
        columns = [c.copy() for name, n in computed.items() if depth[name] == number
                   for c in n.columns]
        ctes.append((f"layer_{number}",
                     exp.select(exp.Star(), *columns).from_(ctes[-1][0])))
    query = exp.select(exp.Star()).from_(ctes[-1][0])
    for name, cte in ctes:
        # `or None`: False would render NOT MATERIALIZED.
        query = query.with_(name, as_=cte,
                            materialized=ctx.capabilities.materialize_layers or None)
    return query


def _base(ctx: Context, level: Entity, passes: list[Pass], nodes: list[Node]) -> exp.Select:
    entity = "stg_accounts" if level == "account" else "stg_contacts"
    key = ACCOUNT if level == "account" else CONTACT
    select = exp.select(col(ACCOUNT, "e"))
    if level == "contact":
        select = select.select(col(CONTACT, "e"), col(TIME, "e"))
        select = _entity_columns(ctx, select, "contact", "e")
        select = _entity_columns(ctx, select, "account", "a",
                                 ctx.account_columns_of_contacts)
        select = select.from_(exp.alias_(exp.to_table(entity), "e")).join(
            exp.alias_(exp.to_table("stg_accounts"), "a"),
            on=col(ACCOUNT, "a").eq(col(ACCOUNT, "e")))
    else:
        select = _entity_columns(ctx, select, "account", "e").from_(
            exp.alias_(exp.to_table(entity), "e"))
    for item in passes:
        select = select.join(exp.to_table(item.relation), join_type="left",
                             on=col(item.key, item.relation).eq(col(key, "e")))
    for name, dimension in ctx.rulebook.dimensions.items():
        if dimension.state_machine is None or dimension.entity != level:
            continue
        # The stage history knows for this entity, for the state machine to hold or release.
        previous = f"previous_{name}"
        select = select.join(
            exp.alias_(exp.to_table("previous_state"), previous), join_type="left",
            on=exp.and_(col("entity_id", previous).eq(col(key, "e")),
                        col("dimension", previous).eq(exp.Literal.string(name)),
                        col("level", previous).eq(exp.Literal.string(level))))
        select = select.select(alias(col("segment", previous), f"__prev__{name}"),
                               alias(col("entered_at", previous), f"__since__{name}"))
    for node in nodes:
        if node.aggregate:
            select = select.select(*(c.copy() for c in node.columns))
    return select


def _entity_columns(ctx: Context, select: exp.Select, entity: str, table: str,
                    only: set[str] | None = None) -> exp.Select:
    return select.select(*(alias(col(name, table), f"{entity}__{name}")
                           for name in entity_columns(ctx, entity)
                           if only is None or name in only))
