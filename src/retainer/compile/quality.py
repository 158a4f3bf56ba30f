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
from retainer.compile.sql import ACCOUNT, CONTACT, alias, col, literal, timestamp, utc_time
from retainer.compile.staging import not_after, src

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
    spec = ctx.rulebook.sources[source]
    assert spec.key is not None
    key = col(spec.key, "s")
    has_key: exp.Expr = key.copy().is_(exp.null()).not_()
    count = exp.Count(this=exp.Star())
    bad_time: exp.Expr = literal(0)
    after_as_of: exp.Expr = literal(0)
    future: exp.Expr = literal(0)
    in_run: exp.Expr = has_key
    if spec.time is not None:
        raw = col(spec.time, "s")
        parsed = utc_time(raw.copy(), ctx.catalog.engine_type(source, spec.time),
                          ctx.capabilities.text_time)
        bad_time = _count_if(exp.and_(has_key.copy(), raw.is_(exp.null()).not_(),
                                      parsed.is_(exp.null())))
        # The same rows staging leaves out: dated after as_of (the entity did not exist yet,
        # or the row is a later update).
        after_as_of = _count_if(exp.and_(has_key.copy(), exp.GT(
            this=parsed.copy(), expression=ctx.as_of_sql())))
        future = _count_if(exp.and_(has_key.copy(), exp.GT(
            this=parsed.copy(), expression=timestamp(ctx.clock))))
        in_run = exp.and_(has_key.copy(), not_after(parsed.copy(), ctx.as_of_sql()))
    # Duplicates among the rows the run reads, so that no row is counted twice: staging
    # keeps one of them per id (cheaper than counting distinct ids again).
    staged = "stg_contacts" if parent is not None else "stg_accounts"
    duplicate = exp.Sub(this=_count_if(in_run), expression=exp.select(
        exp.Count(this=exp.Star())).from_(staged).subquery())
    unknown: exp.Expr = literal(0)
    select = exp.select(
        alias(literal(source), "source"), alias(count, "rows_read"),
        alias(_count_if(key.copy().is_(exp.null())), "missing_id"),
        alias(duplicate, "duplicate_id"))
    if parent is not None:
        # Contacts whose account is unknown: counted from the staged (deduplicated) rows.
        unknown = exp.select(exp.Count(this=exp.Star())).from_(
            exp.alias_(exp.to_table("stg_contacts"), "c")).join(
            exp.alias_(exp.to_table("stg_accounts"), "a"), join_type="left",
            on=col(ACCOUNT, "a").eq(col(ACCOUNT, "c"))).where(
            col(ACCOUNT, "a").is_(exp.null())).subquery()
    return (select.select(alias(unknown, "unknown_id"), alias(bad_time, "bad_time"),
                          alias(after_as_of, "after_as_of"), alias(future, "future_dated"))
            .from_(exp.alias_(exp.to_table(src(source)), "s")))


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
