"""Bind derived traits, segment dimensions, tags and the health score into Nodes.

Each rule is split into its top-level clauses and every clause is stored as a boolean column
of the run, so an explanation reads the very values the run used: it can never disagree with
the segment the run assigned.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from sqlglot import exp

from retainer.compile.context import Context, Node
from retainer.compile.scopes import EntityScope
from retainer.compile.sql import alias, as_double, col, for_engine, literal, round_to
from retainer.errors import did_you_mean
from retainer.rulebook import expressions
from retainer.rulebook.expressions import Bound, ExpressionError
from retainer.rulebook.models import DerivedTrait, Dimension, Health, Tag


def bind_derived(ctx: Context, name: str, trait: DerivedTrait) -> Node:
    node = Node(name, trait.entity, "trait", explain={"definition": trait.expr})
    origin = ctx.rulebook.origin("traits", name)
    sub: tuple[str | int, ...] = ("expr",) if _has(origin, ("expr",)) else ()
    try:
        bound = expressions.bind(expressions.parse(trait.expr), EntityScope(ctx, trait.entity),
                                 trait.expr, ctx.as_of_sql)
    except ExpressionError as error:
        ctx.expression_problem("traits", name, sub, error, f"trait '{name}'")
        return node
    node.type = bound.type
    node.deps = _deps(bound)
    node.columns = [alias(for_engine(bound.tree, ctx.capabilities), name)]
    return node


def bind_dimension(ctx: Context, name: str, dimension: Dimension) -> Node:
    node = Node(name, dimension.entity, "dimension", type="text")
    origin = ctx.rulebook.origin("segments", name)
    base: tuple[str | int, ...] = ("rules",) if _has(origin, ("rules",)) else ()
    whens: list[exp.If] = []
    default: exp.Expr = exp.null()
    rules: list[dict[str, Any]] = []
    for index, rule in enumerate(dimension.rules):
        if rule.when is None:
            default = literal(rule.segment)
            rules.append({"segment": rule.segment, "when": None})
            continue
        sub = (*base, index, rule.segment)
        if _has(origin, (*sub, "when")):
            sub = (*sub, "when")
        flag_prefix = f"__r__{name}__{index}"
        bound = _clauses(ctx, node, "segments", name, sub, rule.when, flag_prefix,
                         f"segment '{rule.segment}' of '{name}'")
        if bound is None:
            continue
        mode, spec, condition = bound
        whens.append(exp.If(this=condition, true=literal(rule.segment)))
        rules.append({"segment": rule.segment, "when": rule.when, "mode": mode,
                      "clauses": spec, "description": rule.description})
    case: exp.Expr = exp.Case(ifs=whens, default=default) if whens else default
    node.explain = {"rules": rules}
    if dimension.state_machine is None:
        node.columns.append(alias(case, name))
        return node
    hold = _holds(ctx, name, dimension, case)
    previous = col(f"__prev__{name}")
    node.columns += [alias(case.copy(), f"__cand__{name}"), alias(hold, f"__hold__{name}"),
                     alias(exp.Case(ifs=[exp.If(this=hold.copy().is_(exp.null()).not_(),
                                                true=previous)], default=case.copy()), name)]
    node.explain["state_machine"] = dimension.state_machine.model_dump()
    return node


def _holds(ctx: Context, name: str, dimension: Dimension, candidate: exp.Expr) -> exp.Expr:
    """Why a state machine keeps the previous stage: 'min_days', 'transition', or null.

    A stage with `min_days` is kept until it has lasted that many calendar days; a stage
    with `transitions` is left only for one of the listed stages.
    """
    machine = dimension.state_machine
    assert machine is not None
    previous, since = col(f"__prev__{name}"), col(f"__since__{name}")
    moving = exp.and_(previous.is_(exp.null()).not_(),
                      exp.NullSafeNEQ(this=candidate.copy(), expression=previous.copy()))
    young = [exp.and_(previous.copy().eq(literal(stage)), exp.LT(
        this=expressions.days_between(since.copy(), ctx.as_of_sql()), expression=literal(days)))
        for stage, days in machine.min_days.items() if days > 0]
    barred = [exp.and_(previous.copy().eq(literal(stage)), exp.Coalesce(
        this=exp.Not(this=candidate.copy().isin(*(literal(t) for t in targets))),
        expressions=[exp.true()])) for stage, targets in machine.transitions.items()]
    ifs = []
    if young:
        ifs.append(exp.If(this=exp.and_(moving, exp.or_(*young)), true=literal("min_days")))
    if barred:
        ifs.append(exp.If(this=exp.and_(moving.copy(), exp.or_(*barred)),
                          true=literal("transition")))
    return exp.Case(ifs=ifs, default=exp.null()) if ifs else exp.cast(exp.null(), "VARCHAR")


def bind_tag(ctx: Context, name: str, tag: Tag) -> Node:
    node = Node(name, tag.entity, "tag", type="boolean")
    origin = ctx.rulebook.origin("tags", name)
    sub: tuple[str | int, ...] = ("when",) if _has(origin, ("when",)) else ()
    bound = _clauses(ctx, node, "tags", name, sub, tag.when, f"__t__{name}",
                     f"tag '{name}'")
    if bound is None:
        return node
    mode, spec, condition = bound
    node.columns.append(alias(exp.Coalesce(this=condition, expressions=[exp.false()]), name))
    node.explain = {"when": tag.when, "mode": mode, "clauses": spec}
    return node


def _clauses(ctx: Context, node: Node, section: str, name: str, sub: tuple[str | int, ...],
             text: str, flag_prefix: str, what: str
             ) -> tuple[str, list[dict[str, Any]], exp.Expr] | None:
    """Bind each top-level clause as its own flag column; return the recombined condition."""
    try:
        tree = expressions.parse(text)
        mode, parts = expressions.clauses(tree)
        scope = EntityScope(ctx, node.level)
        bound_parts: list[Bound] = []
        for part in parts:
            part_text = part.sql(dialect="duckdb")
            bound = expressions.bind(part, scope, text, ctx.as_of_sql)
            bound_parts.append(expressions.as_condition(bound, part_text))
    except ExpressionError as error:
        ctx.expression_problem(section, name, sub, error, what)
        return None
    spec: list[dict[str, Any]] = []
    flags: list[exp.Expr] = []
    texts = expressions.clause_texts(text, mode, len(parts)) or [
        part.sql(dialect="duckdb") for part in parts]
    for index, (part_text, bound) in enumerate(zip(texts, bound_parts, strict=True)):
        flag = f"{flag_prefix}__{index}"
        tree = for_engine(bound.tree, ctx.capabilities)
        node.columns.append(alias(tree, flag))
        node.deps |= _deps(bound)
        flags.append(exp.paren(tree.copy()))
        spec.append({"text": part_text, "flag": flag, "uses": _uses(bound)})
    condition = exp.and_(*flags) if mode == "all" else exp.or_(*flags)
    return mode, spec, condition


def bind_health(ctx: Context, health: Health) -> list[Node]:
    """Component scores, the weighted score and its band, as three layers of nodes."""
    origin = ctx.rulebook.origin("health", "health")
    components: list[Node] = []
    for key, component in health.components.items():
        node = Node(f"health__{key}", "account", "component", type="number")
        trait = ctx.rulebook.traits.get(component.trait)
        if trait is None or trait.entity != "account":
            ctx.problem(f"health component '{key}' uses unknown trait '{component.trait}'",
                        origin.at("components", key, "trait"),
                        did_you_mean(component.trait, [
                            n for n, t in ctx.rulebook.traits.items() if t.entity == "account"]))
            components.append(node)
            continue
        source = ctx.ensure(component.trait)
        if source.type not in ("number", "unknown", "null", "boolean"):
            ctx.problem(f"health component '{key}' needs a numeric trait, but "
                        f"'{component.trait}' is a {source.type}",
                        origin.at("components", key, "trait"))
        node.deps = {component.trait}
        value: exp.Expr = col(component.trait)
        if source.type == "boolean":
            value = as_double(value, source.type, ctx.capabilities)
        score = scale_expression(value, component.scale)
        if component.missing != "redistribute":
            score = exp.Coalesce(this=score, expressions=[literal(float(component.missing))])
        node.columns = [alias(exp.cast(score, "DOUBLE"), node.name)]
        node.explain = {"component": key, "trait": component.trait,
                        "weight": component.weight, "missing": component.missing,
                        "scale": [list(point) for point in component.scale]}
        components.append(node)
    score_node = Node("health", "account", "health", type="number",
                      deps={n.name for n in components})
    weighted = [exp.Mul(this=col(n.name), expression=literal(c.weight))
                for n, c in zip(components, health.components.values(), strict=True)]
    present = [exp.Case(ifs=[exp.If(this=col(n.name).is_(exp.null()).not_(),
                                    true=literal(c.weight))], default=literal(0))
               for n, c in zip(components, health.components.values(), strict=True)]
    total = _sum([exp.Coalesce(this=w, expressions=[literal(0)]) for w in weighted])
    weight = _sum(present)
    score = exp.Div(this=total, expression=exp.Nullif(this=weight, expression=literal(0)))
    rounded = round_to(score, literal(2), ctx.capabilities)
    score_node.columns = [alias(exp.cast(rounded, "DOUBLE"), "health")]
    band = Node("health_band", "account", "band", type="text", deps={"health"})
    ifs = [exp.If(this=exp.GTE(this=col("health"), expression=literal(threshold)),
                  true=literal(label)) for label, threshold in health.ordered_bands()]
    band.columns = [alias(exp.Case(ifs=ifs, default=exp.null()), "health_band")]
    band.explain = {"bands": health.ordered_bands()}
    return [*components, score_node, band]


def scale_expression(value: exp.Expr, points: tuple[tuple[float, float], ...]
                     ) -> exp.Expr:
    """Piecewise-linear interpolation between scale points, flat beyond the ends."""
    (first_x, first_y), last_y = points[0], points[-1][1]
    ifs = [exp.If(this=value.copy().is_(exp.null()), true=exp.null()),
           exp.If(this=exp.LTE(this=value.copy(), expression=literal(first_x)),
                  true=literal(first_y))]
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        slope = (y1 - y0) / (x1 - x0)
        line = exp.Add(this=literal(y0), expression=exp.Mul(
            this=exp.paren(exp.Sub(this=value.copy(), expression=literal(x0))),
            expression=literal(slope)))
        ifs.append(exp.If(this=exp.LTE(this=value.copy(), expression=literal(x1)), true=line))
    return exp.Case(ifs=ifs, default=literal(last_y))


def _sum(items: Sequence[exp.Expr]) -> exp.Expr:
    total = items[0]
    for item in items[1:]:
        total = exp.Add(this=total, expression=item)
    return exp.paren(total)


def _deps(bound: Bound) -> set[str]:
    return {ref.removeprefix("node:") for ref in bound.refs if ref.startswith("node:")}


def _uses(bound: Bound) -> list[dict[str, str]]:
    """What a clause reads, as (label shown to people, column holding the value)."""
    uses: list[dict[str, str]] = []
    for ref in sorted(bound.refs):
        if ref.startswith("node:"):
            name = ref.removeprefix("node:")
            label = name.replace("health__", "health.")
            uses.append({"label": label, "column": name})
        elif ref.startswith("column:"):
            label = ref.removeprefix("column:")
            uses.append({"label": label, "column": label.replace(".", "__")})
    return uses


def _has(origin: Any, sub: tuple[str | int, ...]) -> bool:
    return (*origin.path, *sub) in origin.positions.values
