"""Staging: each source as the pipeline reads it — ids as text, times as UTC, aliases resolved.

* `stg_identities` maps other systems' ids to account ids (several ids → one account).
* `stg_accounts` and `stg_contacts` keep one row per id (the latest by time at or before
  as_of) and drop rows without an id, dated after as_of — an account created after as_of
  did not exist yet — or whose time cannot be read; all of these are counted in the quality
  report. A row without a time is kept: nothing says it is from the future. Both are read
  from `stg_accounts_rows` / `stg_contacts_rows`, every row of the source once, ranked and
  flagged for the report.
* `stg_<source>` views give every row its `__account` (through the identity map, or through
  its contact), `__contact`, `__time`, and the account or contact columns its traits read.
* `stg_accounts_later` and `stg_contacts_later` hold the ids that exist only after as_of:
  rows that belong to them are not in scope yet, rather than of an unknown id.
"""

from __future__ import annotations

from sqlglot import exp

from retainer.compile.aggregates import Pass, flags_later_contacts
from retainer.compile.context import Context
from retainer.compile.sql import ACCOUNT, CONTACT, TIME, alias, col, utc_time, varchar


def src(name: str) -> str:
    return f"src_{name}"


def raw_id(ctx: Context, source: str, column: str, table: str = "s") -> exp.Expr:
    return varchar(col(column, table), ctx.catalog.type_of(source, column))


def resolved_account(ctx: Context, source: str, column: str) -> exp.Expr:
    """The account id of a row: its own id, or the account an identity alias points to."""
    own = raw_id(ctx, source, column)
    if ctx.identities is None:
        return own
    return exp.Coalesce(this=col(ACCOUNT, "ids"), expressions=[own])


def identities_step(ctx: Context) -> exp.Select | None:
    source = ctx.identities
    if source is None:
        return None
    spec = ctx.rulebook.sources[source]
    assert spec.alias and spec.account
    alias_id = raw_id(ctx, source, spec.alias)
    account_id = raw_id(ctx, source, spec.account)
    # An alias claimed by two accounts resolves to the smaller id, so every engine agrees.
    return (exp.select(alias(alias_id, "__alias"), alias(exp.Min(this=account_id), ACCOUNT))
            .from_(exp.alias_(exp.to_table(src(source)), "s"))
            .where(exp.and_(col(spec.alias, "s").is_(exp.null()).not_(),
                            col(spec.account, "s").is_(exp.null()).not_()))
            .group_by(alias_id.copy()))


def entity_columns(ctx: Context, level: str) -> list[str]:
    """The columns of the accounts / contacts source that anything reads, in file order."""
    source = ctx.accounts if level == "account" else ctx.contacts
    assert source is not None
    wanted = set(ctx.used_columns[level])
    spec = ctx.rulebook.sources[source]
    if level == "account":
        wanted |= set(ctx.rulebook.config.output.include)
    elif spec.role:
        wanted.add(spec.role)
    return [name for name in ctx.catalog.names(source) if name in wanted]


def rows_relation(level: str) -> str:
    """The table of every accounts / contacts row, ranked (see `entity_rows_step`)."""
    return f"stg_{level}s_rows"


def entity_rows_step(ctx: Context, source: str, key_name: str) -> exp.Select:
    """Every row of the accounts / contacts source as the run reads it, ranked per id.

    `__rank` 1 is the row the run keeps for its id: the latest by time among the rows that
    belong to the run (`__in_run`: dated at or before as_of, or undated). Ties at the same
    time are broken by the values the row brings into the run, so the kept row does not
    depend on file order or on the engine. (Tied rows that agree on all of those give the
    same staged row whichever is kept; sorting on every other column as well would cost a
    cast and a sort key per column and row.) The rows the run leaves out stay here, flagged,
    so that the quality report counts them without reading the source a second time.
    """
    spec = ctx.rulebook.sources[source]
    key_column = spec.key
    assert key_column is not None
    key = raw_id(ctx, source, key_column)
    time = _time(ctx, source)
    level = "contact" if key_name == CONTACT else "account"
    select = exp.select(alias(key, key_name))
    if key_name == CONTACT:
        assert spec.account is not None
        select = select.select(alias(resolved_account(ctx, source, spec.account), ACCOUNT))
    columns = entity_columns(ctx, level)
    in_run: exp.Expr = exp.true()
    bad_time: exp.Expr = exp.false()
    if spec.time:
        # A time that cannot be read might be after as_of: the row is rejected (and
        # counted), as rows of every other source are; a row with no time at all is kept.
        bad_time = exp.and_(col(spec.time, "s").is_(exp.null()).not_(),
                            time.copy().is_(exp.null()))
        in_run = exp.and_(not_after(time.copy(), ctx.as_of_sql()), exp.not_(bad_time.copy()))
    order = [exp.Ordered(this=time.copy(), desc=True, nulls_first=False)] if spec.time else []
    kept = {*columns, spec.account} if key_name == CONTACT else set(columns)
    order += [exp.Ordered(this=exp.cast(col(name, "s"), "VARCHAR"), nulls_first=True)
              for name in ctx.catalog.names(source) if name in kept]
    rank = exp.Window(this=exp.RowNumber(), partition_by=[key.copy(), in_run.copy()],
                      order=exp.Order(expressions=order) if order else None)
    select = (select.select(alias(time, TIME), *(col(name, "s") for name in columns),
                            alias(in_run, "__in_run"), alias(bad_time, "__bad_time"),
                            alias(rank, "__rank"))
              .from_(exp.alias_(exp.to_table(src(source)), "s")))
    if key_name == CONTACT and ctx.identities is not None:
        select = _join_identities(ctx, select, source, spec.account or "")
    return select


def later_relation(level: str) -> str:
    """The table of the accounts / contacts that exist only after as_of (`later_ids_step`)."""
    return f"stg_{level}s_later"


def later_ids_step(level: str) -> exp.Select:
    """The ids of the accounts / contacts source whose every readable row is dated after
    as_of (a source without a time has none: all its rows are in the run). An id whose only
    rows have unreadable times is not among them: nothing says when it exists."""
    key = col(ACCOUNT if level == "account" else CONTACT)
    return (exp.select(key).from_(rows_relation(level))
            .where(exp.and_(key.copy().is_(exp.null()).not_(), exp.not_(col("__bad_time"))))
            .group_by(key.copy()).having(exp.not_(exp.LogicalOr(this=col("__in_run")))))


def entity_step(ctx: Context, key_name: str) -> exp.Select:
    """One row per entity id, the latest by time up to as_of; rows without an id and rows
    dated after as_of are left out (an update after as_of is not seen either)."""
    level = "contact" if key_name == CONTACT else "account"
    keep = [col(key_name)] + ([col(ACCOUNT)] if key_name == CONTACT else [])
    keep += [col(TIME), *(col(name) for name in entity_columns(ctx, level))]
    return exp.select(*keep).from_(rows_relation(level)).where(exp.and_(
        col(key_name).is_(exp.null()).not_(), col("__in_run"),
        col("__rank").eq(exp.Literal.number(1))))


def source_step(ctx: Context, item: Pass) -> exp.Select:
    """A view of one source for one aggregate pass: resolved ids, UTC time, and only the
    joins that pass needs (a contact pass never resolves accounts it does not read)."""
    source = item.source
    spec = ctx.rulebook.sources[source]
    joined = item.scope.joined
    via_contact = spec.account is None
    needs_account = item.level == "account" or bool(joined["account"])
    select = exp.select()
    account: exp.Expr = col(ACCOUNT, "c")
    if needs_account:
        if not via_contact:
            assert spec.account is not None
            account = resolved_account(ctx, source, spec.account)
        select = select.select(alias(account, ACCOUNT))
    if spec.contact is not None:
        select = select.select(alias(raw_id(ctx, source, spec.contact), CONTACT))
    if spec.time is not None:
        select = select.select(alias(_time(ctx, source), TIME))
    flags_later = flags_later_contacts(ctx, item)
    if item.quality:
        id_column = spec.account if item.level == "account" and spec.account else spec.contact
        assert id_column is not None
        select = select.select(alias(col(id_column, "s").is_(exp.null()), "__no_id"))
    if flags_later:
        select = select.select(alias(col(CONTACT, "later").is_(exp.null()).not_(), "__later"))
    every_column = exp.Column(this=exp.Star(), table=exp.to_identifier("s"))
    select = select.select(every_column)
    for name in sorted(joined["contact"]):
        select = select.select(alias(col(name, "c"), f"contact__{name}"))
    for name in sorted(joined["account"]):
        select = select.select(alias(col(name, "a"), f"account__{name}"))
    select = select.from_(exp.alias_(exp.to_table(src(source)), "s"))
    if needs_account and not via_contact and ctx.identities is not None:
        select = _join_identities(ctx, select, source, spec.account or "")
    if (needs_account and via_contact) or joined["contact"]:
        assert spec.contact is not None
        select = select.join(exp.alias_(exp.to_table("stg_contacts"), "c"), join_type="left",
                             on=col(CONTACT, "c").eq(raw_id(ctx, source, spec.contact)))
    if flags_later:
        assert spec.contact is not None
        select = select.join(exp.alias_(exp.to_table(later_relation("contact")), "later"),
                             join_type="left",
                             on=col(CONTACT, "later").eq(raw_id(ctx, source, spec.contact)))
    if joined["account"]:
        select = select.join(exp.alias_(exp.to_table("stg_accounts"), "a"), join_type="left",
                             on=col(ACCOUNT, "a").eq(account.copy()))
    return select


def not_after(time: exp.Expr, as_of: exp.Expr) -> exp.Expr:
    """The row belongs to the run: dated at or before as_of, or not dated at all."""
    return exp.paren(exp.or_(time.is_(exp.null()), exp.LTE(this=time.copy(), expression=as_of)))


def _join_identities(ctx: Context, select: exp.Select, source: str, column: str) -> exp.Select:
    return select.join(exp.alias_(exp.to_table("stg_identities"), "ids"), join_type="left",
                       on=col("__alias", "ids").eq(raw_id(ctx, source, column)))


def _time(ctx: Context, source: str) -> exp.Expr:
    spec = ctx.rulebook.sources[source]
    if spec.time is None:
        return exp.cast(exp.null(), "TIMESTAMP")
    return utc_time(col(spec.time, "s"), ctx.catalog.engine_type(source, spec.time),
                    ctx.capabilities.text_time)
