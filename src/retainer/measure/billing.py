"""Who was a paying customer when, and for how much — from the subscriptions source.

A subscription is *active* at a moment t when it had started (its time column is at or before
t, or it has none) and was not yet cancelled (its cancellation is empty or after t). An account
is active when any of its subscriptions is, and its recurring revenue at t is the sum over its
active subscriptions. Retention compares each account at as_of with the same account at
as_of + horizon; an account churns when it is active at the first and not at the second.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlglot import exp

from retainer.compile.sql import alias, col, timestamp, utc_time
from retainer.errors import DataError, Location
from retainer.measure.workspace import Workspace

NOW, LATER = "__date", "__later"


@dataclass(frozen=True)
class Billing:
    source: str
    cancelled: str
    revenue: str | None = None


def checked(ws: Workspace, billing: Billing, location: Location | None) -> Billing:
    """`billing` after checking that its source has the columns it names."""
    if billing.source not in ws.rulebook.sources:
        raise DataError(f"no source '{billing.source}'", location=location,
                        hint="sources: " + ", ".join(ws.rulebook.sources))
    for column, what in ((billing.cancelled, "cancelled"), (billing.revenue, "revenue")):
        if column is not None and not ws.catalog.has(billing.source, column):
            raise DataError(f"source '{billing.source}' has no column '{column}'",
                            location=location,
                            hint=f"name the column with '{what}:'; columns: "
                                 + ", ".join(ws.catalog.names(billing.source)))
    return billing


def dates(*pairs: tuple[datetime, datetime]) -> exp.Select:
    """A relation of (`__date`, `__later`) moments."""
    rows = [exp.Tuple(expressions=[timestamp(now), timestamp(later)]) for now, later in pairs]
    values = exp.Values(expressions=rows, alias=exp.TableAlias(
        this=exp.to_identifier("d"), columns=[exp.to_identifier(NOW), exp.to_identifier(LATER)]))
    return exp.select(NOW, LATER).from_(values)


def horizon_dates(moments: list[datetime], horizon: timedelta) -> exp.Select:
    return dates(*((m, m + horizon) for m in moments))


def activity(ws: Workspace, billing: Billing, moments: exp.Select) -> exp.Select:
    """Per account and pair of moments: `__active_now`, `__active_later` and, with a revenue
    column, `__mrr_now` and `__mrr_later`."""
    spec = ws.rulebook.sources[billing.source]
    rows, account = ws.source_rows(billing.source)
    started = None if spec.time is None else utc_time(
        col(spec.time, "s"), ws.catalog.engine_type(billing.source, spec.time))
    cancelled = utc_time(col(billing.cancelled, "s"),
                         ws.catalog.engine_type(billing.source, billing.cancelled))

    def active(at: str) -> exp.Expr:
        moment = col(at, "d")
        ended = exp.or_(cancelled.copy().is_(exp.null()), cancelled.copy() > moment)
        if started is None:
            return ended
        return exp.and_(exp.or_(started.copy().is_(exp.null()), started.copy() <= moment.copy()),
                        ended)

    def revenue(at: str) -> exp.Expr:
        assert billing.revenue is not None
        value = exp.Coalesce(this=exp.cast(col(billing.revenue, "s"), "DOUBLE"),
                             expressions=[exp.Literal.number(0)])
        return exp.Sum(this=exp.Case(ifs=[exp.If(this=active(at), true=value)],
                                     default=exp.Literal.number(0)))

    select = rows.join(moments.subquery("d"), join_type="cross").select(
        alias(col(NOW, "d"), NOW), alias(col(LATER, "d"), LATER), alias(account, "__account"),
        alias(exp.LogicalOr(this=active(NOW)), "__active_now"),
        alias(exp.LogicalOr(this=active(LATER)), "__active_later"))
    if billing.revenue is not None:
        select = select.select(alias(revenue(NOW), "__mrr_now"),
                               alias(revenue(LATER), "__mrr_later"))
    return select.where(account.copy().is_(exp.null()).not_()).group_by(
        col(NOW, "d"), col(LATER, "d"), account.copy())


def churn_moments(ws: Workspace, billing: Billing) -> exp.Select:
    """Accounts whose every subscription is cancelled, with the last cancellation
    (`__account`, `__churned_at`)."""
    rows, account = ws.source_rows(billing.source)
    cancelled = utc_time(col(billing.cancelled, "s"),
                         ws.catalog.engine_type(billing.source, billing.cancelled))
    return (rows.select(alias(account, "__account"),
                        alias(exp.Max(this=cancelled), "__churned_at"))
            .where(account.copy().is_(exp.null()).not_())
            .group_by(account.copy())
            .having(exp.Count(this=exp.Star()).eq(exp.Count(this=cancelled.copy()))))
