"""What a measure's `by` and `trait` name, as columns of the accounts-as-of-a-date table.

`by` may name an account dimension (groups are its segments, in rule order), a tag (`yes` /
`no`), `health_band` (bands from the lowest up), any other column of the results — a trait or
an included account column — whose values become the groups, or a bucketed number
(`{trait: mrr, buckets: [0, 500, 5000]}`). `health.<component>` names a component's score.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from sqlglot import exp

from retainer.compile.sql import col
from retainer.rulebook.loader import Rulebook
from retainer.rulebook.measure_models import Buckets

NONE = "(none)"
MISSING = "(missing)"
ALL = "all"


@dataclass(frozen=True)
class Grouping:
    label: str                 # how the grouping is named in output ("value_tier")
    expression: exp.Expr       # text group of a row of the snapshot aliased `r`
    order: tuple[str, ...]     # known groups in display order (others follow, sorted)

    def sort(self, groups: Sequence[str]) -> list[str]:
        known = [g for g in self.order if g in groups]
        return known + sorted(g for g in groups if g not in self.order)


def column_name(name: str) -> str:
    """`health.usage` → the results column `health__usage`; other names are columns."""
    head, _, tail = name.partition(".")
    return f"{head}__{tail}" if tail else name


def known_columns(rulebook: Rulebook) -> dict[str, str]:
    """Names a measure may use → what they are (for validation and messages)."""
    names: dict[str, str] = {}
    for name in rulebook.config.output.include:
        names[name] = "account column"
    for name, trait in rulebook.traits.items():
        if trait.entity == "account":
            names[name] = "trait"
    if rulebook.health is not None:
        names["health"] = "health score"
        names["health_band"] = "health band"
        for component in rulebook.health.components:
            names[f"health.{component}"] = "health component"
    for name, tag in rulebook.tags.items():
        if tag.entity == "account":
            names[name] = "tag"
    for name, dimension in rulebook.dimensions.items():
        if dimension.entity == "account":
            names[name] = "dimension"
    return names


def grouping(rulebook: Rulebook, by: str | Buckets | None) -> Grouping:
    if by is None:
        return Grouping(ALL, exp.Literal.string(ALL), (ALL,))
    if isinstance(by, Buckets):
        return _buckets(by)
    kind = known_columns(rulebook).get(by)
    value = col(column_name(by), "r")
    if kind == "tag":
        return Grouping(by, exp.Case(ifs=[exp.If(this=value, true=exp.Literal.string("yes"))],
                                     default=exp.Literal.string("no")), ("yes", "no"))
    order: tuple[str, ...] = ()
    if kind == "dimension":
        order = tuple(rule.segment for rule in rulebook.dimensions[by].rules)
    elif kind == "health band" and rulebook.health is not None:
        order = tuple(name for name, _ in reversed(rulebook.health.ordered_bands()))
    text = exp.Coalesce(this=exp.cast(value, "VARCHAR"), expressions=[exp.Literal.string(NONE)])
    return Grouping(by, text, (*order, NONE))


def _buckets(by: Buckets) -> Grouping:
    value = exp.cast(col(column_name(by.trait), "r"), "DOUBLE")
    bounds = by.buckets
    labels = [f"< {_number(bounds[0])}"]
    labels += [f"{_number(a)}–{_number(b)}" for a, b in itertools.pairwise(bounds)]
    labels.append(f"≥ {_number(bounds[-1])}")
    ifs = [exp.If(this=value.is_(exp.null()), true=exp.Literal.string(MISSING))]
    ifs += [exp.If(this=value.copy() < exp.Literal.number(bound),
                   true=exp.Literal.string(label)) for bound, label in zip(bounds, labels,
                                                                           strict=False)]
    case = exp.Case(ifs=ifs, default=exp.Literal.string(labels[-1]))
    return Grouping(f"{by.trait} buckets", case, (*labels, MISSING))


def _number(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,g}"
