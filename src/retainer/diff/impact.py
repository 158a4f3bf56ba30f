"""What a diff finds: frozen values from the move matrices down to one entity's reasons, and
the words for them (the pull-request summary line and the CI gate's verdict)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

Level = Literal["account", "contact"]
Status = Literal["changed", "unchanged", "added", "removed"]
NONE = "–"  # how a missing segment is shown


@dataclass(frozen=True)
class Cell:
    """How many entities were in `from_segment` before and are in `to_segment` now.
    None: no segment (no rule matched, the dimension or the entity does not exist there)."""

    from_segment: str | None
    to_segment: str | None
    count: int

    @property
    def moved(self) -> bool:
        return self.from_segment != self.to_segment


def moved_count(cells: Iterable[Cell]) -> int:
    """Entities in cells whose segment before and after differ."""
    return sum(c.count for c in cells if c.moved)


@dataclass(frozen=True)
class ClauseValue:
    text: str
    value: bool | None
    values: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class RuleReason:
    segment: str
    when: str | None           # None: the `else` rule
    matched: bool
    mode: str                  # "all" (clauses joined by and) or "any" (by or)
    clauses: tuple[ClauseValue, ...]


@dataclass(frozen=True)
class Held:
    """A state machine kept the entity's stage from history instead of the rules' choice."""

    reason: str                # "min_days" or "transition"
    candidate: str | None      # what the rules alone gave
    rule: str                  # the state machine's rule, in words


@dataclass(frozen=True)
class SideReason:
    """One version's verdict: the rule that matched, the rule of the other version's segment
    when this version tried it and it did not match, and a state machine's hold if any."""

    segment: str | None
    matched: RuleReason | None
    passed_over: RuleReason | None
    held: Held | None = None


@dataclass(frozen=True)
class Sample:
    entity_id: str
    from_segment: str | None
    to_segment: str | None
    old: SideReason
    new: SideReason


@dataclass(frozen=True)
class DimensionImpact:
    name: str
    level: Level
    status: Status
    old_segments: tuple[str, ...]
    new_segments: tuple[str, ...]
    rules_changed: bool
    cells: tuple[Cell, ...]
    samples: tuple[Sample, ...]

    @property
    def moved(self) -> int:
        """Entities whose segment differs; for an added or removed dimension, every entity
        with a segment on the side that has it."""
        return moved_count(self.cells)

    @property
    def order(self) -> tuple[str, ...]:
        """Every segment of either version: the old rules' order, then new segments."""
        return (*self.old_segments, *self.segments_added)

    @property
    def segments_added(self) -> tuple[str, ...]:
        return tuple(s for s in self.new_segments if s not in self.old_segments)

    @property
    def segments_removed(self) -> tuple[str, ...]:
        return tuple(s for s in self.old_segments if s not in self.new_segments)

    @property
    def segment_changes(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """("segments added" | "segments removed", names) worth a note: only for a changed
        dimension, since an added or removed one has all its segments new or gone."""
        if self.status != "changed":
            return ()
        return tuple((what, names) for what, names in (
            ("segments added", self.segments_added),
            ("segments removed", self.segments_removed)) if names)


@dataclass(frozen=True)
class TagImpact:
    name: str
    level: Level
    status: Status
    rules_changed: bool
    old_count: int
    new_count: int
    gained: int
    lost: int


@dataclass(frozen=True)
class HealthImpact:
    status: Status
    definition_changed: bool
    bands: tuple[str, ...]           # lowest first, the new version's then the old's
    cells: tuple[Cell, ...]          # band before → band after
    score_changed: int
    mean_abs_change: float | None
    max_abs_change: float | None

    @property
    def band_moved(self) -> int:
        return moved_count(self.cells)


@dataclass(frozen=True)
class LevelTotal:
    level: Level
    entities: int
    moved: int                       # entities moved in a dimension both versions have


@dataclass(frozen=True)
class Impact:
    as_of: datetime
    old_label: str
    new_label: str
    old_hash: str
    new_hash: str
    totals: tuple[LevelTotal, ...]
    dimensions: tuple[DimensionImpact, ...]
    tags: tuple[TagImpact, ...]
    health: HealthImpact | None

    @property
    def summary(self) -> str:
        return summary_line(self)


def segment_rank(order: Sequence[str], segment: str | None) -> tuple[int, str]:
    """Sort key: the rules' order, then segments the order does not know, "no segment" last."""
    if segment is None:
        return (len(order) + 1, "")
    return (order.index(segment), "") if segment in order else (len(order), segment)


def plural(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def summary_line(impact: Impact) -> str:
    """One sentence for a pull request: who moves where, and what else changes."""
    totals = [t for t in impact.totals if t.moved]
    moves = sorted(((c.count, d, c) for d in impact.dimensions if d.status == "changed"
                    for c in d.cells if c.moved), key=lambda m: -m[0])
    if totals:
        head = "This change moves " + " and ".join(
            f"{t.moved:,} of {plural(t.entities, t.level)}" for t in totals)
        details = [f"{plural(n, d.level)} from {c.from_segment or NONE} to "
                   f"{c.to_segment or NONE} ({d.name})" for n, d, c in moves[:3]]
        if len(moves) > 3:
            details.append(f"and {len(moves) - 3} smaller move{'s' * (len(moves) > 4)}")
        parts = [f"{head}: {', '.join(details)}"]
    else:
        parts = ["This change moves no " + (" or ".join(
            f"{t.level}s" for t in impact.totals) or "entities")]
    for status, verb in (("added", "adds"), ("removed", "removes")):
        names = [d.name for d in impact.dimensions if d.status == status]
        if names:
            parts.append(f"{verb} dimension{'s' * (len(names) > 1)} {', '.join(names)}")
    for tag in impact.tags:
        if tag.status != "unchanged":
            change = [f"{plural(tag.gained, tag.level)} gain it" if tag.gained else "",
                      f"{plural(tag.lost, tag.level)} lose it" if tag.lost else ""]
            verb = {"added": "new tag", "removed": "removed tag"}.get(tag.status, "tag")
            parts.append(f"{verb} {tag.name}: " + (", ".join(c for c in change if c)
                                                   or "no one holds it"))
    health = impact.health
    if health is not None and health.status in ("added", "removed"):
        parts.append(f"health score {health.status}")
    elif health is not None and health.band_moved:
        parts.append(f"{plural(health.band_moved, 'account')} change health band")
    return "; ".join(parts) + "."


def gate(impact: Impact, limit: int) -> list[str]:
    """Why a CI gate with `--fail-if-moved LIMIT` fails (empty: it passes)."""
    return [f"{d.name} ({d.status}) moves {plural(d.moved, d.level)}, more than {limit:,}"
            for d in impact.dimensions if d.moved > limit]
