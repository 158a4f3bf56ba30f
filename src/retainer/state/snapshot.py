"""What a finished run contributes to history, read from its published results.

Memberships come out as long rows (level, entity, dimension, segment, reason), where a tag is
the dimension `tag:<name>` with segment `yes` while it holds, and the reason is a small JSON
document: the rule that matched, its clause values and the values it read.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from retainer.compile.sql import col

_LEVEL_KEYS = {"account": "__account", "contact": "__contact"}


def _json(pairs: list[tuple[str, exp.Expr]]) -> exp.Expr:
    return exp.JSONObject(expressions=[
        exp.JSONKeyValue(this=exp.Literal.string(key), expression=value)
        for key, value in pairs])


def _values(clauses: list[dict[str, Any]]) -> exp.Expr:
    uses = {use["label"]: use["column"] for clause in clauses for use in clause["uses"]}
    return _json([(label, col(column)) for label, column in uses.items()])


def _relation(level: str, key: str, suffix: str) -> exp.Select:
    results, reasons = f"{level}_results{suffix}", f"{level}_reasons{suffix}"
    return exp.select().from_(exp.alias_(exp.to_table(results), "r")).join(
        exp.alias_(exp.to_table(reasons), "x"),
        on=col("__key", "x").eq(exp.cast(col(key, "r"), "VARCHAR")))


def memberships_query(explain: dict[str, Any], keys: dict[str, str], suffix: str = ""
                      ) -> exp.Query:
    """One row per entity per dimension (and per holding tag) of a run's outputs.

    `suffix` names the staged outputs (`__next`) when the run has not published yet.
    """
    parts: list[exp.Select] = []
    for level, spec in explain["levels"].items():
        key = keys[level]
        entity = exp.cast(col(key, "r"), "VARCHAR")
        for dimension, rules in spec["dimensions"].items():
            reasons = [exp.If(this=col(dimension).eq(exp.Literal.string(rule["segment"])),
                              true=_json([("rule", exp.Literal.string(rule["segment"])),
                                          ("values", _values(rule.get("clauses") or [])),
                                          ("clauses", exp.Array(expressions=[
                                              col(c["flag"]) for c in rule.get("clauses") or []
                                          ]))]))
                       for rule in rules]
            parts.append(_relation(level, key, suffix).select(
                exp.alias_(exp.Literal.string(level), "level"), exp.alias_(entity, "entity_id"),
                exp.alias_(exp.Literal.string(dimension), "dimension"),
                exp.alias_(col(dimension), "segment"),
                exp.alias_(exp.cast(exp.Case(ifs=reasons), "VARCHAR"), "reason"),
            ).where(col(dimension).is_(exp.null()).not_()))
        for tag, tag_spec in spec["tags"].items():
            parts.append(_relation(level, key, suffix).select(
                exp.alias_(exp.Literal.string(level), "level"), exp.alias_(entity, "entity_id"),
                exp.alias_(exp.Literal.string(f"tag:{tag}"), "dimension"),
                exp.alias_(exp.Literal.string("yes"), "segment"),
                exp.alias_(exp.cast(_json([("values", _values(tag_spec["clauses"]))]),
                                    "VARCHAR"), "reason"),
            ).where(col(tag)))
    if not parts:
        return exp.select(*(exp.alias_(exp.cast(exp.null(), "VARCHAR"), name) for name in (
            "level", "entity_id", "dimension", "segment", "reason"))).where(exp.false())
    query: exp.Query = parts[0]
    for part in parts[1:]:
        query = exp.union(query, part, distinct=False)
    return query


def health_query(explain: dict[str, Any], key: str, suffix: str = ""
                 ) -> tuple[exp.Query, list[str]]:
    """Score, band and component scores per account (empty when the rulebook has no health)."""
    health = explain["levels"].get("account", {}).get("health")
    results = f"account_results{suffix}"
    entity = exp.alias_(exp.cast(col(key), "VARCHAR"), "entity_id")
    if health is None:
        empty = exp.select(entity, exp.alias_(exp.cast(exp.null(), "DOUBLE"), "score"),
                           exp.alias_(exp.cast(exp.null(), "VARCHAR"), "band"),
                           exp.alias_(exp.cast(exp.null(), "DOUBLE[]"), "components")
                           ).from_(results).where(exp.false())
        return empty, []
    names = [c["component"] for c in health["components"]]
    components = exp.Array(expressions=[exp.cast(col(f"health__{n}"), "DOUBLE")
                                        for n in names])
    query = exp.select(entity, exp.alias_(col("health"), "score"),
                       exp.alias_(col("health_band"), "band"),
                       exp.alias_(components, "components")).from_(results)
    return query, names
