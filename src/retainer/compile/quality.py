"""The run's data-quality report: per source, rows read and rows that could not be used.

Categories are disjoint, so they add up: a row is rejected for a missing id, a duplicate id,
an id that matches no account (or contact), or a missing/unparseable time; rows with an id
dated after as_of are kept out of every trait and counted as `after_as_of` — whether or not
their id is known yet, since an account created after as_of is not part of the run either;
`future_dated` (after the run's clock) is a warning inside that count.
"""

from __future__ import annotations

from sqlglot import exp

from retainer.compile.aggregates import Pass
from retainer.compile.context import Context
from retainer.compile.sql import ACCOUNT, CONTACT, TIME, alias, col, literal, timestamp
from retainer.compile.staging import rows_relation

COLUMNS = ("source", "rows_read", "missing_id", "duplicate_id", "unknown_id", "bad_time",
           "after_as_of", "future_dated")


def quality_step(ctx: Context, passes: list[Pass]) -> exp.Query:
    parts: list[exp.Select] = [_entity(ctx, ctx.accounts, None)]
    if ctx.contacts is not None:
        parts.append(_entity(ctx, ctx.contacts, ctx.accounts))
    parts.extend(_source(item) for item in passes if item.quality)
    query: exp.Query = parts[0]
    for part in parts[1:]:
        query = exp.union(query, part, distinct=False)
    return query


def _entity(ctx: Context, source: str, parent: str | None) -> exp.Select:
    """Counted from the ranked rows staging read once (`staging.entity_rows_step`)."""
    spec = ctx.rulebook.sources[source]
    level = "account" if parent is None else "contact"
    key = col(ACCOUNT if parent is None else CONTACT)
    has_key = key.copy().is_(exp.null()).not_()
    after_as_of: exp.Expr = literal(0)
    future: exp.Expr = literal(0)
    if spec.time is not None:
        after_as_of = _count_if(exp.and_(has_key.copy(), exp.not_(col("__in_run")),
                                         exp.not_(col("__bad_time"))))
        future = _count_if(exp.and_(has_key.copy(), exp.GT(
            this=col(TIME), expression=timestamp(ctx.clock))))
    staged = "stg_contacts" if parent is not None else "stg_accounts"
    unknown: exp.Expr = literal(0)
    if parent is not None:
        # Contacts whose account is unknown: counted from the staged (deduplicated) rows.
        unknown = exp.select(exp.Count(this=exp.Star())).from_(
            exp.alias_(exp.to_table(staged), "c")).join(
            exp.alias_(exp.to_table("stg_accounts"), "a"), join_type="left",
            on=col(ACCOUNT, "a").eq(col(ACCOUNT, "c"))).where(
            col(ACCOUNT, "a").is_(exp.null())).subquery()
    # Duplicates among the rows the run reads, so that no row is counted twice: staging
    # keeps one of them per id (cheaper than counting distinct ids again).
    duplicate = exp.Sub(this=_count_if(exp.and_(has_key.copy(), col("__in_run"))),
                        expression=exp.select(exp.Count(this=exp.Star())).from_(
                            staged).subquery())
    return exp.select(
        alias(literal(source), "source"), alias(exp.Count(this=exp.Star()), "rows_read"),
        alias(_count_if(key.copy().is_(exp.null())), "missing_id"),
        alias(duplicate, "duplicate_id"), alias(unknown, "unknown_id"),
        alias(_count_if(exp.and_(has_key.copy(), col("__bad_time"))), "bad_time"),
        alias(after_as_of, "after_as_of"), alias(future, "future_dated"),
    ).from_(rows_relation(level))


def _source(item: Pass) -> exp.Select:
    key = item.key
    entity = "stg_contacts" if key == CONTACT else "stg_accounts"
    matched = col(key, "k").is_(exp.null()).not_()

    def total(expression: exp.Expr, when: exp.Expr | None = None) -> exp.Expr:
        value = expression if when is None else exp.Case(
            ifs=[exp.If(this=when, true=expression)], default=literal(0))
        return exp.cast(exp.Coalesce(this=exp.Sum(this=value), expressions=[literal(0)]),
                        "BIGINT")

    return (exp.select(
        alias(literal(item.source), "source"), alias(total(col("__rows", "g")), "rows_read"),
        alias(total(col("__no_id", "g")), "missing_id"), alias(literal(0), "duplicate_id"),
        alias(total(exp.Sub(this=exp.Sub(this=col("__rows", "g"), expression=col("__no_id", "g")),
                            expression=col("__after_as_of", "g")),
                    matched.not_()), "unknown_id"),
        alias(total(col("__bad_time", "g"), matched), "bad_time"),
        alias(total(col("__after_as_of", "g")), "after_as_of"),
        alias(total(col("__future", "g")), "future_dated"))
        .from_(exp.alias_(exp.to_table(item.relation), "g"))
        .join(exp.alias_(exp.to_table(entity), "k"), join_type="left",
              on=col(key, "k").eq(col(key, "g"))))


def _count_if(condition: exp.Expr) -> exp.Expr:
    return exp.Filter(this=exp.Count(this=exp.Star()), expression=exp.Where(this=condition))
