"""Aggregate traits: one pass over each source per entity level (never a query per trait).

Every aggregate carries its window and `where` as a FILTER clause, so one GROUP BY computes
all traits of a source. Windows are half-open, `(as_of − start, as_of − end]`, with bounds
computed as literals; rows after as_of never count. The same pass counts the rows it could
not use (missing ids, unparseable times, rows after as_of or of a contact that exists only
after it) for the run's quality report.

One split: when a trait without a window makes a pass read every row, and some trait with a
window needs work that scan would not otherwise do — a DISTINCT, or a join for
`contact.<column>` / `account.<column>` — the traits with a window get a pass of their own
that reads only the union of their windows. Engines compute a DISTINCT beside other
aggregates by keeping every row of the group, and a join costs per row joined; over ten
million events of a long history either costs more than a second scan of the last weeks
(which engines narrow further by skipping row groups outside it). A source and level thus
have at most two passes. When every trait has a window, the one pass reads every row only
for the quality counts, which cost little: it is not split.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlglot import exp

from retainer.compile.capabilities import Capabilities
from retainer.compile.context import Context, Node
from retainer.compile.scopes import AggregateScope
from retainer.compile.sql import ACCOUNT, CONTACT, TIME, alias, col, for_engine, literal, timestamp
from retainer.errors import did_you_mean
from retainer.rulebook import expressions
from retainer.rulebook.expressions import ExpressionError, Type
from retainer.rulebook.fields import Entity
from retainer.rulebook.models import AggregateTrait

# What an aggregate returns when a window holds no rows.
_EMPTY: dict[str, object] = {"count": 0, "count_distinct": 0, "sum": 0, "exists": False}
# Columns of the quality report each pass adds (name → SQL filter over a staged row).
QUALITY_COLUMNS = ("__rows", "__no_id", "__bad_time", "__after_as_of", "__future")
JOINABLE = ("account", "contact")  # qualifiers that join an entity table into a pass


@dataclass
class Pass:
    """One GROUP BY over a staged source."""

    source: str
    level: Entity
    rollup: bool
    scope: AggregateScope
    windowed: bool = False  # the windowed traits, split off a pass that reads every row
    selects: list[exp.Expr] = field(default_factory=list)
    traits: list[str] = field(default_factory=list)
    quality: bool = False
    # Each trait's time bounds (lower None: unbounded), for a pre-filter on the scan.
    bounds: list[tuple[datetime | None, datetime]] = field(default_factory=list)

    @property
    def suffix(self) -> str:
        return ("_by_contact" if self.level == "contact" else "") + (
            "_windowed" if self.windowed else "")

    @property
    def relation(self) -> str:
        return f"agg_{self.source}{self.suffix}"

    @property
    def staged(self) -> str:
        return "run_contact" if self.rollup else f"stg_{self.source}{self.suffix}"

    @property
    def key(self) -> str:
        return CONTACT if self.level == "contact" else ACCOUNT


@dataclass
class Passes:
    ctx: Context
    by_key: dict[tuple[str, Entity, bool], Pass] = field(default_factory=dict)
    # Whether (source, level) splits its windowed traits off: decided once, not per trait.
    splits: dict[tuple[str, Entity], bool] = field(default_factory=dict)

    def get(self, source: str, level: Entity, windowed: bool = False) -> Pass:
        key = (source, level, windowed)
        if key not in self.by_key:
            rollup = source == self.ctx.contacts and level == "account"
            self.by_key[key] = Pass(source, level, rollup, AggregateScope(self.ctx, source,
                                                                          rollup), windowed)
        return self.by_key[key]

    def for_trait(self, source: str, trait: AggregateTrait) -> Pass:
        """The pass a trait is computed in (see the module's docstring for the split)."""
        level = trait.entity
        if not _windowed(self.ctx, trait):
            return self.get(source, level)
        if (source, level) not in self.splits:
            self.splits[source, level] = self._splits_windowed(source, level)
        return self.get(source, level, self.splits[source, level])

    def _splits_windowed(self, source: str, level: Entity) -> bool:
        """Whether the windowed traits of (source, level) get their own pass: a trait
        without a window makes the main pass read every row, and a windowed trait needs
        work that pass would not otherwise do."""
        if source == self.ctx.contacts and level == "account":
            return False  # a roll-up over contacts: already small
        traits = [t for t in self.ctx.rulebook.traits.values() if isinstance(t, AggregateTrait)
                  and t.source == source and t.entity == level]
        staying = [t for t in traits if not _windowed(self.ctx, t)]
        if not staying:
            return False  # no trait needs every row: one pass over the windows
        spec = self.ctx.rulebook.sources[source]
        joined = set().union(*(_joins(t) for t in staying))
        if level == "account" and spec.account is None:
            joined.add("contact")  # the account is found through the contact
        return any(t.func == "count_distinct" or _joins(t) - joined
                   for t in traits if _windowed(self.ctx, t))

    def source_passes(self) -> list[Pass]:
        """Passes over raw sources, each source's first pass carrying the quality counts."""
        passes = [p for p in self.by_key.values() if not p.rollup]
        seen: set[str] = set()
        # Account passes first, and a split-off pass never: it reads only its windows.
        for item in sorted(passes, key=lambda p: (p.level, p.windowed)):
            item.quality = item.source not in seen
            seen.add(item.source)
        return passes

    def rollups(self) -> list[Pass]:
        return [p for p in self.by_key.values() if p.rollup]


def bind_aggregate(ctx: Context, passes: Passes, name: str, trait: AggregateTrait) -> Node:
    node = Node(name, trait.entity, "trait", aggregate=True)
    node.explain = {"definition": describe(trait)}
    source = _check_source(ctx, name, trait)
    if source is None:
        return node
    work = passes.for_trait(source, trait)
    value_type: Type = "number"
    try:
        value_sql, value_type = _value(ctx, work, name, trait)
        where_sql = _where(ctx, work, name, trait)
    except ExpressionError:
        return node  # reported by _value/_where with the right location
    predicate = _window(ctx, work, trait)
    if where_sql is not None:
        predicate = exp.and_(predicate, exp.paren(where_sql)) if predicate else where_sql
    func = trait.func
    if func in ("latest", "first"):
        assert value_sql is not None
        not_null = value_sql.copy().is_(exp.null()).not_()
        predicate = exp.and_(predicate, not_null) if predicate else not_null
    strategy = ctx.capabilities.value_at_time
    aggregate = _aggregate(func, value_sql, value_type, ctx.capabilities)
    if predicate is not None and func == "count_distinct":
        # COUNT(DISTINCT CASE …) means the same as COUNT(DISTINCT …) FILTER (…) but lets
        # engines hash (key, value) once instead of (key, value, filter flag).
        assert value_sql is not None
        aggregate = exp.Count(this=exp.Distinct(expressions=[exp.Case(
            ifs=[exp.If(this=predicate, true=value_sql.copy())])]))
    elif predicate is not None:
        aggregate = exp.Filter(this=aggregate, expression=exp.Where(this=predicate))
    if func == "avg" and not ctx.capabilities.avg_is_double:
        aggregate = exp.cast(aggregate, "DOUBLE")  # AVG of integers is an exact decimal there
    if func in ("latest", "first") and strategy == "array_agg":
        aggregate = exp.Bracket(this=exp.paren(aggregate), expressions=[exp.Literal.number(0)])
    if func == "exists":
        aggregate = exp.GT(this=aggregate, expression=exp.Literal.number(0))
    work.selects.append(alias(aggregate, name))
    work.traits.append(name)
    node.type = "boolean" if func == "exists" else (
        "number" if func in ("count", "count_distinct", "sum", "avg") else value_type)
    default = trait.default if trait.default is not None else _EMPTY.get(func)
    joined: exp.Expr = col(name, work.relation)
    if default is not None:
        joined = exp.Coalesce(this=joined, expressions=[literal(default)])
    node.columns = [alias(joined, name)]
    return node


def _joins(trait: AggregateTrait) -> set[str]:
    """The entity tables a trait's expressions join (`contact.role` → contact)."""
    found: set[str] = set()
    for text in (trait.where, trait.value):
        if text is None:
            continue
        try:
            tree = expressions.parse(text)
        except ExpressionError:
            continue  # reported when the trait is bound
        found.update(c.table for c in tree.find_all(exp.Column) if c.table in JOINABLE)
    return found


def _windowed(ctx: Context, trait: AggregateTrait) -> bool:
    source = ctx.rulebook.sources.get(trait.source)
    return trait.window.start is not None and source is not None and source.time is not None


def _check_source(ctx: Context, name: str, trait: AggregateTrait) -> str | None:
    origin = ctx.rulebook.origin("traits", name)
    func = trait.func
    where = origin.at(func if func in ("count", "exists") else "from")
    source = trait.source
    if source not in ctx.rulebook.sources:
        ctx.problem(f"trait '{name}' reads unknown source '{source}'", where,
                    did_you_mean(source, ctx.rulebook.sources)
                    or "sources: " + ", ".join(ctx.rulebook.sources))
        return None
    spec = ctx.rulebook.sources[source]
    if spec.kind in ("accounts", "identities"):
        ctx.problem(f"trait '{name}' aggregates the {spec.kind} source '{source}'", where,
                    "account columns are used directly: write a derived trait such as "
                    "'account.seats_purchased'")
        return None
    if trait.entity == "contact" and source == ctx.contacts:
        ctx.problem(f"contact trait '{name}' aggregates the contacts themselves", where,
                    "use the contact's columns in a derived contact trait instead")
        return None
    if trait.entity == "contact" and spec.contact is None:
        ctx.problem(f"contact trait '{name}' reads '{source}', which has no contact column",
                    where, f"add 'contact: <column>' to source '{source}'")
        return None
    has_time = spec.time is not None
    if not has_time and not trait.window.unbounded:
        ctx.problem(f"trait '{name}' has a window but source '{source}' has no time column",
                    origin.at("window"), f"add 'time: <column>' to source '{source}'")
        return None
    if not has_time and func in ("latest", "first"):
        ctx.problem(f"'{func}' needs a time to order by, but source '{source}' has none",
                    where, f"add 'time: <column>' to source '{source}'")
        return None
    return source


def _value(ctx: Context, work: Pass, name: str, trait: AggregateTrait
           ) -> tuple[exp.Expr | None, Type]:
    text = trait.value
    if text is None:
        return None, "number"
    sub: tuple[str | int, ...] = (trait.func,)
    try:
        bound = expressions.bind(expressions.parse(text), work.scope, text, ctx.as_of_sql)
    except ExpressionError as error:
        ctx.expression_problem("traits", name, sub, error, f"trait '{name}'")
        raise
    if trait.func in ("sum", "avg") and bound.type not in ("number", "unknown", "null"):
        problem = ExpressionError(f"{trait.func} needs a number, but '{text}' is a "
                                  f"{bound.type}", 0, "use count_distinct for text, or cast it")
        ctx.expression_problem("traits", name, sub, problem, f"trait '{name}'")
        raise problem
    return for_engine(bound.tree, ctx.capabilities), bound.type


def _where(ctx: Context, work: Pass, name: str, trait: AggregateTrait) -> exp.Expr | None:
    if trait.where is None:
        return None
    try:
        bound = expressions.bind(expressions.parse(trait.where), work.scope, trait.where,
                                 ctx.as_of_sql)
        expressions.as_condition(bound, trait.where)
    except ExpressionError as error:
        ctx.expression_problem("traits", name, ("where",), error, f"trait '{name}' where")
        raise
    return for_engine(bound.tree, ctx.capabilities)


def _window(ctx: Context, work: Pass, trait: AggregateTrait) -> exp.Expr | None:
    if ctx.rulebook.sources[work.source].time is None:
        return None
    time = col(TIME)
    window = trait.window
    upper_bound = ctx.as_of - window.end
    lower_bound = None if window.start is None else ctx.as_of - window.start
    work.bounds.append((lower_bound, upper_bound))
    upper = exp.LTE(this=time, expression=timestamp(upper_bound))
    if lower_bound is None:
        return upper
    lower = exp.GT(this=time.copy(), expression=timestamp(lower_bound))
    return exp.and_(lower, upper)


def _aggregate(func: str, value: exp.Expr | None, value_type: Type,
               capabilities: Capabilities) -> exp.Expr:
    strategy = capabilities.value_at_time
    if func in ("count", "exists"):
        return exp.Count(this=exp.Star())
    assert value is not None
    if func == "count_distinct":
        return exp.Count(this=exp.Distinct(expressions=[value]))
    if func in ("latest", "first"):
        # Ties at the same time are broken by the value itself, so every engine agrees:
        # latest takes the largest value, first the smallest.
        if strategy == "array_agg":
            descending = func == "latest"
            keys = [exp.Ordered(this=e, desc=descending, nulls_first=False)
                    for e in (col(TIME), value.copy())]
            return exp.ArrayAgg(this=exp.Order(this=value, expressions=keys))
        order = exp.Tuple(expressions=[col(TIME), value.copy()])
        cls = exp.ArgMax if func == "latest" else exp.ArgMin
        return cls(this=value, expression=order)
    if func in ("min", "max") and value_type == "boolean" and not capabilities.boolean_arithmetic:
        return (exp.LogicalAnd if func == "min" else exp.LogicalOr)(this=value)
    return {"sum": exp.Sum, "avg": exp.Avg, "min": exp.Min, "max": exp.Max}[func](this=value)


def flags_later_contacts(ctx: Context, work: Pass) -> bool:
    """Whether a quality pass's staged rows carry `__later`: the pass finds each row's account
    through its contact, and a contact can exist only after as_of. Such a row has no account
    (as a row of an unknown contact has none), so only this flag tells the two apart."""
    return (work.quality and work.level == "account"
            and ctx.rulebook.sources[work.source].account is None and ctx.can_be_later("contact"))


def quality_selects(work: Pass, clock_sql: exp.Expr, as_of_sql: exp.Expr,
                    later_contacts: bool) -> list[exp.Expr]:
    """Counts of rows a pass read but could not use, for the run's quality report."""
    time = col(TIME)

    def count_where(condition: exp.Expr) -> exp.Expr:
        return exp.Filter(this=exp.Count(this=exp.Star()),
                          expression=exp.Where(this=condition))

    has_id = exp.Not(this=col("__no_id"))  # a row without an id counts as missing only
    after_as_of: exp.Expr = exp.GT(this=time.copy(), expression=as_of_sql)
    if later_contacts:
        # A row of a contact that exists only after as_of is not in scope yet either.
        after_as_of = exp.paren(exp.or_(after_as_of, col("__later")))
    return [
        alias(exp.Count(this=exp.Star()), "__rows"),
        alias(count_where(col("__no_id")), "__no_id"),
        alias(count_where(time.copy().is_(exp.null())), "__bad_time"),
        alias(count_where(exp.and_(has_id, after_as_of)), "__after_as_of"),
        alias(count_where(exp.and_(has_id.copy(), exp.GT(this=time.copy(),
                                                          expression=clock_sql))), "__future"),
    ]


def describe(trait: AggregateTrait) -> str:
    """A one-line human description of an aggregate trait, for explanations."""
    func = trait.func
    what = {"count": f"number of {trait.source} rows", "exists": f"any {trait.source} row",
            "count_distinct": f"distinct {trait.value} in {trait.source}",
            "latest": f"latest {trait.value} in {trait.source}",
            "first": f"first {trait.value} in {trait.source}"}.get(
        func, f"{func} of {trait.value} in {trait.source}")
    where = f" where {trait.where}" if trait.where else ""
    return f"{what}{where}, {trait.window}"


def pass_query(ctx: Context, work: Pass) -> exp.Select:
    """SELECT key, every trait of this pass [, quality counts] FROM the staged rows.

    A pass that does not count quality reads only the rows some window can hold: when every
    trait has a window, the scan is limited to their union (the FILTERs still apply).
    """
    select = exp.select(col(work.key), *work.selects).from_(work.staged).group_by(
        col(work.key))
    if work.quality:
        return select.select(*quality_selects(work, timestamp(ctx.clock), ctx.as_of_sql(),
                                              flags_later_contacts(ctx, work)))
    if work.bounds and len(work.bounds) == len(work.traits) \
            and all(lower is not None for lower, _ in work.bounds):
        lowest = min(lower for lower, _ in work.bounds if lower is not None)
        highest = max(upper for _, upper in work.bounds)
        select = select.where(exp.and_(
            exp.GT(this=col(TIME), expression=timestamp(lowest)),
            exp.LTE(this=col(TIME), expression=timestamp(highest))))
    return select
