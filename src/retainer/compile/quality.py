"""The run's data-quality report: per source, rows read and rows that could not be used.

Categories are disjoint, so they add up: a row is rejected for a missing id, a duplicate id,
an id that matches no account (or contact), or a missing/unparseable time; rows with an id
dated after as_of are kept out of every trait and counted as `after_as_of` — whether or not
their id is known yet, since an account created after as_of is not part of the run either.
So are the rows of an account or contact that exists only after as_of
(`staging.later_ids_step`), whatever their own time: not in scope yet is no fault of the data.
`future_dated` (after the run's clock) is a warning inside `after_as_of`.
"""

from __future__ import annotations

from sqlglot import exp

from retainer.compile.aggregates import Pass
from retainer.compile.context import Context
from retainer.compile.sql import ACCOUNT, CONTACT, TIME, alias, col, literal, timestamp
from retainer.compile.staging import later_relation, rows_relation

COLUMNS = ("source", "rows_read", "missing_id", "duplicate_id", "unknown_id", "bad_time",
           "after_as_of", "future_dated")


def quality_step(ctx: Context, passes: list[Pass]) -> exp.Query:
    parts: list[exp.Select] = [_entity(ctx, ctx.accounts, None)]
    if ctx.contacts is not None:
        parts.append(_entity(ctx, ctx.contacts, ctx.accounts))
    parts.extend(_source(ctx, item) for item in passes if item.quality)
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
        # Contacts of an account that is not in the run, counted from the staged
        # (deduplicated) contacts: unknown, or not in scope yet.
        contacts = exp.select(exp.Count(this=exp.Star())).from_(exp.alias_(
            exp.to_table(staged), "c"))
        contacts, missing, later = _account_scope(ctx, contacts, col(ACCOUNT, "c"))
        unknown = contacts.where(_unknown(missing, later)).subquery()
        if later:
            later_contacts = contacts.where(_later(later)).subquery()
            after_as_of = later_contacts if spec.time is None else exp.Add(
                this=after_as_of, expression=later_contacts)
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


def _source(ctx: Context, item: Pass) -> exp.Select:
    """Counted from the pass's groups: each group's id is in the run, exists only after
    as_of, or is unknown."""
    key = col(item.key, "g")
    select = exp.select().from_(exp.alias_(exp.to_table(item.relation), "g"))
    if item.key == CONTACT:
        select, missing, later = _contact_scope(ctx, select, key)
    else:
        select, missing, later = _account_scope(ctx, select, key)
    with_id = exp.Sub(this=col("__rows", "g"), expression=col("__no_id", "g"))

    def total(expression: exp.Expr, when: exp.Expr | None = None,
              otherwise: exp.Expr | None = None) -> exp.Expr:
        value = expression if when is None else exp.Case(
            ifs=[exp.If(this=when, true=expression)],
            default=literal(0) if otherwise is None else otherwise)
        return exp.cast(exp.Coalesce(this=exp.Sum(this=value), expressions=[literal(0)]),
                        "BIGINT")

    after_as_of = col("__after_as_of", "g")
    return select.select(
        alias(literal(item.source), "source"), alias(total(col("__rows", "g")), "rows_read"),
        alias(total(col("__no_id", "g")), "missing_id"), alias(literal(0), "duplicate_id"),
        alias(total(exp.Sub(this=with_id, expression=after_as_of.copy()),
                    _unknown(missing, later)), "unknown_id"),
        alias(total(col("__bad_time", "g"), exp.not_(missing)), "bad_time"),
        alias(total(with_id.copy(), _later(later), after_as_of) if later
              else total(after_as_of), "after_as_of"),
        alias(total(col("__future", "g")), "future_dated"))


# A query joined to what is known of an id: whether the id is missing from the run, and the
# ids of what it depends on that exist only after as_of (any of them found: it is later).
Scoped = tuple[exp.Select, exp.Expr, list[exp.Column]]


def _account_scope(ctx: Context, select: exp.Select, account: exp.Expr) -> Scoped:
    """`select` joined to what is known of `account`."""
    select = select.join(exp.alias_(exp.to_table("stg_accounts"), "a"), join_type="left",
                         on=col(ACCOUNT, "a").eq(account))
    missing = col(ACCOUNT, "a").is_(exp.null())
    if not ctx.can_be_later("account"):
        return select, missing, []
    select = select.join(exp.alias_(exp.to_table(later_relation("account")), "later_a"),
                         join_type="left", on=col(ACCOUNT, "later_a").eq(account.copy()))
    return select, missing, [col(ACCOUNT, "later_a")]


def _contact_scope(ctx: Context, select: exp.Select, contact: exp.Expr) -> Scoped:
    """As `_account_scope`, for a contact: it is in the run when its account is, and not in
    scope yet when it, or its account, exists only after as_of."""
    select = select.join(exp.alias_(exp.to_table("stg_contacts"), "c"), join_type="left",
                         on=col(CONTACT, "c").eq(contact))
    select, missing, later = _account_scope(ctx, select, col(ACCOUNT, "c"))
    if ctx.can_be_later("contact"):
        select = select.join(exp.alias_(exp.to_table(later_relation("contact")), "later_c"),
                             join_type="left", on=col(CONTACT, "later_c").eq(contact.copy()))
        later = [col(CONTACT, "later_c"), *later]
    return select, missing, later


def _later(later: list[exp.Column]) -> exp.Expr:
    return exp.or_(*(column.copy().is_(exp.null()).not_() for column in later))


def _unknown(missing: exp.Expr, later: list[exp.Column]) -> exp.Expr:
    return exp.and_(missing, *(column.copy().is_(exp.null()) for column in later))


def _count_if(condition: exp.Expr) -> exp.Expr:
    return exp.Filter(this=exp.Count(this=exp.Star()), expression=exp.Where(this=condition))
