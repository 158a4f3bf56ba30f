"""Evaluate both versions of a rulebook on the same data at the same `as_of` and measure who
moves: per dimension a before → after matrix, per tag who gains and loses it, health bands
and scores, and sample entities explained from each side's own reasons, exactly as
`retainer explain` would show them."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from retainer.diff.impact import (
    Cell,
    ClauseValue,
    DimensionImpact,
    HealthImpact,
    Held,
    Impact,
    Level,
    LevelTotal,
    RuleReason,
    Sample,
    SideReason,
    Status,
    TagImpact,
    segment_rank,
)
from retainer.diff.results import History, Joined, evaluated
from retainer.explain import Explanation, RuleOutcome, explain
from retainer.project import utc_now
from retainer.rulebook.loader import Rulebook


def compare(old: Rulebook, new: Rulebook, as_of: datetime, samples: int = 3, *,
            old_label: str = "old", new_label: str = "new",
            history: History | None = None) -> Impact:
    """Evaluate both rulebooks on the same data at the same `as_of` and measure who moves.

    `history` gives the stages state machines start from (see `stored_history`); both sides
    get the same, so a stage held by `min_days` is held in both. None: the rules decide alone.
    """
    clock = utc_now()
    with (evaluated(old, "old", old_label, as_of, clock, history) as before,
          evaluated(new, "new", new_label, as_of, clock, history) as after):
        joined = Joined(before, after)
        try:
            dimensions: list[DimensionImpact] = []
            tags: list[TagImpact] = []
            totals: list[LevelTotal] = []
            for level in joined.levels:
                old_dims, new_dims = before.dimensions(level), after.dimensions(level)
                names = _union(new_dims, old_dims)
                for name in names:
                    dimension = _dimension(joined, level, name, old_dims.get(name),
                                           new_dims.get(name))
                    if dimension.status == "changed" and samples > 0:
                        dimension = _with_samples(joined, dimension, samples)
                    dimensions.append(dimension)
                old_tags, new_tags = before.tags(level), after.tags(level)
                tags += [_tag(joined, level, name, old_tags.get(name), new_tags.get(name))
                         for name in _union(new_tags, old_tags)]
                totals.append(joined.totals(level, [n for n in names if n in old_dims
                                                    and n in new_dims]))
            health = _health(joined, before.health(), after.health())
        finally:
            joined.close()
    return Impact(as_of, old_label, new_label, old.content_hash, new.content_hash,
                  tuple(totals), tuple(dimensions), tuple(tags), health)


def _union(first: Collection[str], second: Collection[str]) -> list[str]:
    """`first`'s names in its order, then those only `second` has."""
    return [*first, *(n for n in second if n not in first)]


def _status(old: object, new: object, changed: bool) -> Status:
    return "added" if old is None else "removed" if new is None else (
        "changed" if changed else "unchanged")


def _dimension(joined: Joined, level: Level, name: str, old: list[dict[str, Any]] | None,
               new: list[dict[str, Any]] | None) -> DimensionImpact:
    old_segments, new_segments = _segments(old or []), _segments(new or [])
    order = _union(old_segments, new_segments)
    cells = _sorted(joined.matrix(level, f"d__{name}"), order)
    rules_changed = [(r["segment"], r["when"]) for r in old or []] != [
        (r["segment"], r["when"]) for r in new or []]
    return DimensionImpact(name, level, _status(old, new, any(c.moved for c in cells)),
                           old_segments, new_segments, rules_changed, cells, ())


def _with_samples(joined: Joined, dimension: DimensionImpact, limit: int) -> DimensionImpact:
    """Up to `limit` entities of each moved cell, in the matrix's order, with both reasons."""
    level, name = dimension.level, dimension.name
    position = {(c.from_segment, c.to_segment): i for i, c in enumerate(dimension.cells)}
    picked = sorted(joined.sample_keys(level, f"d__{name}", limit),
                    key=lambda p: (position.get((p[0], p[1]), len(position)), p[2]))
    return dataclasses.replace(dimension, samples=tuple(
        Sample(key, was, now,
               _side_reason(explain(joined.old.engine, key, level), name, now),
               _side_reason(explain(joined.new.engine, key, level), name, was))
        for was, now, key in picked))


def _tag(joined: Joined, level: Level, name: str, old: dict[str, Any] | None,
         new: dict[str, Any] | None) -> TagImpact:
    old_count, new_count, gained, lost = joined.tag_counts(level, name)
    rules_changed = (old or {}).get("when") != (new or {}).get("when")
    return TagImpact(name, level, _status(old, new, bool(gained or lost)), rules_changed,
                     old_count, new_count, gained, lost)


def _health(joined: Joined, old: dict[str, Any] | None, new: dict[str, Any] | None
            ) -> HealthImpact | None:
    if old is None and new is None:
        return None
    bands = [b[0] for b in sorted((new or old or {}).get("bands", []), key=lambda b: b[1])]
    bands += [b[0] for b in (old or {}).get("bands", []) if b[0] not in bands]
    changed, mean, largest = joined.score_change()
    return HealthImpact(_status(old, new, bool(changed)), old != new, tuple(bands),
                        _sorted(joined.matrix("account", "h__band"), bands), changed, mean,
                        largest)


def _segments(rules: list[dict[str, Any]]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(str(r["segment"]) for r in rules))


def _sorted(cells: Sequence[Cell], order: Sequence[str]) -> tuple[Cell, ...]:
    return tuple(sorted(cells, key=lambda c: (segment_rank(order, c.from_segment),
                                              segment_rank(order, c.to_segment))))


def _side_reason(item: Explanation, dimension: str, other: str | None) -> SideReason:
    outcome = next(d for d in item.dimensions if d.name == dimension)
    matched = next((r for r in outcome.rules if r.matched), None)
    passed = next((r for r in outcome.rules if not r.matched and r.segment == other), None)
    held = outcome.held
    return SideReason(outcome.segment, _reason(matched), _reason(passed), None if held is None
                      else Held(held.reason, held.candidate, held.rule))


def _reason(rule: RuleOutcome | None) -> RuleReason | None:
    if rule is None:
        return None
    return RuleReason(rule.segment, rule.when, rule.matched, rule.mode, tuple(
        ClauseValue(c.text, c.value, tuple(c.uses)) for c in rule.clauses))
