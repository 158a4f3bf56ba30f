"""Survey answers as NPS and CSAT count them.

An answer counts when it was given in the measure's window, (as_of − window, as_of], and
matches its `where` (by default `kind = 'nps'` or `kind = 'csat'` when the source has a `kind`
column). NPS takes each respondent's latest answer in the window — one voice per person, as a
relationship survey means it; CSAT takes every answer, since each rates one interaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlglot import exp

from retainer.compile.sql import alias, col, timestamp, utc_time
from retainer.errors import DataError, Location, RetainerError
from retainer.measure.workspace import Workspace
from retainer.rulebook.expressions import (
    Binding,
    ExpressionError,
    as_condition,
    bind,
    parse,
)
from retainer.rulebook.measure_models import Measure

DEFAULT_WINDOW = {"nps": timedelta(days=365), "csat": timedelta(days=90)}
PROMOTER, DETRACTOR = 9, 6  # promoters answer 9–10, detractors 0–6


def answers(ws: Workspace, name: str, measure: Measure, as_of: datetime) -> exp.Select:
    """One row per counted answer: `__account` and `__score`."""
    source = measure.source or ws.rulebook.source_of_kind("surveys")
    assert source is not None  # checked with the rulebook
    spec = ws.rulebook.sources[source]
    origin = ws.rulebook.origins.get(("measures", name))
    where_at = origin.at("score") if origin else None
    if not ws.catalog.has(source, measure.score):
        raise DataError(f"measure '{name}': source '{source}' has no column "
                        f"'{measure.score}' to read scores from", location=where_at,
                        hint="name the score column with 'score:'; columns: "
                             + ", ".join(ws.catalog.names(source)))
    if spec.time is None:
        raise DataError(f"measure '{name}': source '{source}' has no time column, so answers "
                        "cannot be placed in a window",
                        location=origin.location if origin else None,
                        hint="declare the source's 'time'")
    rows, account = ws.source_rows(source)
    time = utc_time(col(spec.time, "s"), ws.catalog.engine_type(source, spec.time))
    window = measure.window or DEFAULT_WINDOW[measure.metric]
    respondent = exp.cast(col(spec.contact, "s"), "VARCHAR") if spec.contact else account.copy()
    conditions: list[exp.Expr] = [time > timestamp(as_of - window), time.copy() <= timestamp(as_of),
                  col(measure.score, "s").is_(exp.null()).not_(),
                  account.copy().is_(exp.null()).not_()]
    condition = _where(ws, name, measure, source, time, as_of)
    if condition is not None:
        conditions.append(condition)
    select = rows.select(alias(account, "__account"), alias(respondent, "__respondent"),
                         alias(exp.cast(col(measure.score, "s"), "DOUBLE"), "__score"),
                         alias(time.copy(), "__time")).where(exp.and_(*conditions))
    if measure.metric != "nps":
        return select
    latest = exp.Window(this=exp.RowNumber(), partition_by=[col("__respondent")],
                        order=exp.Order(expressions=[
                            exp.Ordered(this=col("__time"), desc=True),
                            exp.Ordered(this=col("__score"), desc=True)]))
    ranked = exp.select("__account", "__score", alias(latest, "__rank")).from_(
        select.subquery("answers"))
    return exp.select("__account", "__score").from_(ranked.subquery("ranked")).where(
        col("__rank").eq(1))


def _where(ws: Workspace, name: str, measure: Measure, source: str, time: exp.Expr,
           as_of: datetime) -> exp.Expr | None:
    if measure.where is None:
        if ws.catalog.has(source, "kind"):
            return col("kind", "s").eq(exp.Literal.string(measure.metric))
        return None
    origin = ws.rulebook.origins.get(("measures", name))
    scope = _SourceScope(ws, source, time, as_of)
    try:
        bound = as_condition(bind(parse(measure.where), scope, measure.where,
                                  lambda: timestamp(as_of)), measure.where)
    except ExpressionError as exc:
        location: Location | None = origin.inside(("where",), exc.offset) if origin else None
        raise RetainerError(f"measure '{name}': {exc.message}", location=location,
                            hint=exc.hint) from None
    return bound.tree


class _SourceScope:
    """Names in a measure's `where`: the source's columns and `as_of`."""

    def __init__(self, ws: Workspace, source: str, time: exp.Expr, as_of: datetime) -> None:
        self.ws, self.source, self.time, self.as_of = ws, source, time, as_of

    def lookup(self, qualifier: str, name: str) -> Binding | None:
        if qualifier:
            return None
        if name == "as_of":
            return Binding(timestamp(self.as_of), "timestamp", "as_of")
        if name == self.ws.rulebook.sources[self.source].time:
            return Binding(self.time.copy(), "timestamp", f"column:{self.source}.{name}")
        if self.ws.catalog.has(self.source, name):
            return Binding(col(name, "s"), self.ws.catalog.type_of(self.source, name),
                           f"column:{self.source}.{name}")
        return None

    def candidates(self, qualifier: str) -> Iterable[str]:
        return [] if qualifier else [*self.ws.catalog.names(self.source), "as_of"]

    def describe(self) -> str:
        return f"source '{self.source}' (its columns and as_of)"
