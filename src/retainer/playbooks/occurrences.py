"""Trigger occurrences, read from the membership history of the state store.

An occurrence is one moment a trigger happened for one entity; it is part of every action's
idempotency key, so the same occurrence never acts twice, however often `act` runs.

* `enter` — an interval open at as_of that began within `within` before it. Intervals the
  very first run in history opened are not entries: that run found the entity there, it did
  not see it arrive. Occurrence: when the interval began.
* `exit` — an interval that ended within `within` before as_of, with the entity not back
  in the segment at as_of. Occurrence: when it ended.
* `in` — an interval open at as_of that began at least `days` before it. Occurrence: the
  moment it became `days` old, and with `every` the latest `days + k·every` reached (a
  late act fires once, not once per missed period).
* no trigger (only `when`) — the as_of day: the condition holds "today".

History rebuilt by `backfill --replace` (other dates, another cadence) moves the moments a
stay or an absence began, and with them the occurrences: `same_state` tells whether an
occurrence acted on under the old history is one of the new one's. The runs pin a change
down only to the gap between two of them — after the last run that saw the old state, at
or before the first that saw the new one — so an old occurrence belongs to the state an
occurrence comes from when it lies after that last run: ordinary history never puts one
there (the entity was seen out of the state in between), a rebuilt one only moves a
change within the gap its runs leave.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from retainer.rulebook.playbook_models import Trigger
from retainer.state import Store


@dataclass(frozen=True)
class Occurrence:
    entity_id: str
    kind: str                # enter, exit, in, when
    segment: str | None      # as written: lifecycle.new, or a tag
    at: datetime
    why: str
    # When history says the state it comes from began: the entry (enter, in), the exit.
    began: datetime | None = None


def membership(segment: str) -> tuple[str, str]:
    """`lifecycle.new` → ("lifecycle", "new"); a tag `champion` → ("tag:champion", "yes")."""
    dimension, dot, name = segment.partition(".")
    return (dimension, name) if dot else (f"tag:{segment}", "yes")


def describe(segment: str) -> str:
    return segment if "." in segment else f"tag {segment}"


def baseline(store: Store) -> datetime | None:
    """The as_of of the first run in history: what it found was there, not entered."""
    rows = store.backend.fetch("SELECT min(as_of) FROM runs WHERE in_history")
    value = rows[0][0] if rows else None
    return value if isinstance(value, datetime) else None


def occurrences(store: Store, trigger: Trigger, level: str, as_of: datetime
                ) -> list[Occurrence]:
    dimension, segment = membership(trigger.segment)
    label = describe(trigger.segment)
    open_now = ("entered_at <= ? AND (exited_at IS NULL OR exited_at > ?)")
    where = "level = ? AND dimension = ? AND segment = ?"
    found: list[Occurrence] = []
    if trigger.kind == "enter":
        first = baseline(store)
        rows = store.backend.fetch(
            f"SELECT entity_id, entered_at FROM memberships WHERE {where} AND {open_now} "
            "AND entered_at > ?", [level, dimension, segment, as_of, as_of,
                                   as_of - trigger.within])
        for entity, entered in rows:
            if first is not None and entered <= first:
                continue
            found.append(Occurrence(str(entity), "enter", trigger.segment, entered,
                                    f"entered {label} {_day(entered)}", entered))
    elif trigger.kind == "exit":
        rows = store.backend.fetch(
            f"SELECT entity_id, max(exited_at) FROM memberships WHERE {where} "
            "AND exited_at > ? AND exited_at <= ? GROUP BY entity_id",
            [level, dimension, segment, as_of - trigger.within, as_of])
        back = {str(r[0]) for r in store.backend.fetch(
            f"SELECT entity_id FROM memberships WHERE {where} AND {open_now}",
            [level, dimension, segment, as_of, as_of])}
        for entity, exited in rows:
            if str(entity) not in back:
                found.append(Occurrence(str(entity), "exit", trigger.segment, exited,
                                        f"left {label} {_day(exited)}", exited))
    else:
        due = timedelta(days=trigger.days)
        rows = store.backend.fetch(
            f"SELECT entity_id, entered_at FROM memberships WHERE {where} AND {open_now}",
            [level, dimension, segment, as_of, as_of])
        for entity, entered in rows:
            first_due = entered + due
            if first_due > as_of:
                continue
            moment = first_due
            if trigger.every is not None:
                moment = first_due + trigger.every * ((as_of - first_due) // trigger.every)
            days = (as_of - entered).days
            found.append(Occurrence(str(entity), "in", trigger.segment, moment,
                                    f"in {label} since {_day(entered)} ({days} days)",
                                    entered))
    return sorted(found, key=lambda o: (o.at, o.entity_id))


def history_times(store: Store) -> list[datetime]:
    """The as_of of every run in history, oldest first."""
    return [r[0] for r in store.backend.fetch(
        "SELECT DISTINCT as_of FROM runs WHERE in_history ORDER BY as_of")]


def seen_before(times: Sequence[datetime], moment: datetime) -> datetime | None:
    """The last run in history before `moment` (None: there is none)."""
    index = bisect_left(times, moment)
    return times[index - 1] if index else None


def same_state(occurrence: Occurrence, trigger: Trigger, earlier: datetime,
               times: Sequence[datetime]) -> bool:
    """Whether `earlier`, an occurrence of the same trigger for the same entity acted on
    under an earlier history, came from the same stay (enter, in) or absence (exit) as
    `occurrence`: it lies after the last run before that state began. An `in` with `every`
    fires once per period: `earlier` is the period whose moment it is nearest to."""
    if occurrence.began is None:
        return False
    last_other = seen_before(times, occurrence.began)
    if last_other is not None and earlier <= last_other:
        return False
    if trigger.kind == "in" and trigger.every is not None:
        half = trigger.every / 2
        return occurrence.at - half <= earlier < occurrence.at + half
    return True


def condition_occurrence(entity_id: str, as_of: datetime) -> Occurrence:
    day = datetime(as_of.year, as_of.month, as_of.day)
    return Occurrence(entity_id, "when", None, day, "condition holds")


def _day(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d}" if moment.time() == datetime.min.time() else \
        f"{moment:%Y-%m-%d %H:%M}"
