"""Playbook uplift: the outcome rate of treated entities against their holdout group.

A playbook with a `holdout` leaves a stable random share of the entities it fires for
untreated, and records them in the ledger as `held_out`; with an `outcome` it says what
success is — being in some segments (or tags) and in none of others, `after` a time since
the occurrence. Per playbook, each entity counts once, at its first occurrence in the
ledger, in the arm it was assigned to (intention to treat: a treated message the consent
gate suppressed still counts as treated). Its outcome is read from membership history at
occurrence + after, so only occurrences that long before the latest run count.

A `retired` row (pending when its playbook left the rulebook, measured if the playbook
comes back) counts as treated too: it counted so while it was pending, and retiring it must
not move an entity to another arm or another moment. Only the treated arm has rows that can
be retired — a holdout row is never pending — so leaving them out would thin that arm
alone; and a retired `failed` row may well have arrived (a timeout after the destination
took it).

The uplift is the treated rate minus the holdout's, with Newcombe's interval for a
difference of two proportions. Entities capped or in cooldown get no ledger row, so heavy
caps make the treated arm a little more selective than the holdout (docs/playbooks.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlglot import exp

from retainer.measure import stats
from retainer.playbooks.ledger import TREATED
from retainer.playbooks.occurrences import membership
from retainer.rulebook.loader import Rulebook
from retainer.rulebook.playbook_models import Outcome, Playbook
from retainer.state import Store, open_store, store_exists

NO_PLAYBOOKS = ("No playbook with a holdout and an outcome has acted long enough ago to "
                "measure yet.")


@dataclass(frozen=True)
class Arm:
    accounts: int
    successes: int      # accounts with the outcome (retained, activated, …)

    @property
    def rate(self) -> stats.Estimate:
        return stats.wilson(self.successes, self.accounts)


@dataclass(frozen=True)
class Uplift:
    playbook: str
    outcome: str
    treated: Arm
    holdout: Arm
    difference: stats.Estimate

    @property
    def small(self) -> bool:
        return min(self.treated.accounts, self.holdout.accounts) < 30


def uplift(playbook: str, outcome: str, treated: Arm, holdout: Arm,
           confidence: float = 0.95) -> Uplift:
    difference = stats.difference_of_proportions(
        treated.successes, treated.accounts, holdout.successes, holdout.accounts, confidence)
    return Uplift(playbook, outcome, treated, holdout, difference)


def describe(outcome: Outcome) -> str:
    """`in lifecycle.activated or lifecycle.power_user, not in lifecycle.lapsed, after 30d`."""
    parts = []
    if outcome.in_:
        parts.append("in " + " or ".join(outcome.in_))
    if outcome.not_in:
        parts.append("not in " + " or ".join(outcome.not_in))
    days = outcome.after / timedelta(days=1)
    after = f"{days:g}d" if days == int(days) else f"{outcome.after.total_seconds() / 3600:g}h"
    return ", ".join(parts) + f", after {after}"


def uplifts(rulebook: Rulebook) -> list[Uplift]:
    """Every measurable playbook's uplift against its holdout, from the state store."""
    measured = {n: p for n, p in rulebook.playbooks.items() if p.holdout > 0 and p.outcome}
    if not measured or not store_exists(rulebook.config.state, rulebook.root):
        return []
    store = open_store(rulebook.config.state, rulebook.root)
    try:
        latest = store.latest_as_of()
        if latest is None:
            return []
        found = []
        for name, playbook in measured.items():
            firsts = _first_occurrences(store, name)
            result = _measure(store, name, playbook, firsts, latest)
            if result is not None:
                found.append(result)
        return found
    finally:
        store.close()


def _first_occurrences(store: Store, playbook: str) -> dict[str, tuple[datetime, bool]]:
    """Each entity's first occurrence in the ledger and whether it was held out."""
    query = (exp.select("entity_id", "occurrence", "holdout").from_("ledger")
             .where(exp.column("playbook").eq(exp.Placeholder()))
             .where(exp.column("status").isin(*(exp.Literal.string(s)
                                                 for s in (*TREATED, "held_out"))))
             .order_by("entity_id", "occurrence"))
    rows = store.backend.fetch(query, [playbook])
    firsts: dict[str, tuple[datetime, bool]] = {}
    for entity, occurrence, holdout in rows:
        firsts.setdefault(str(entity), (occurrence, bool(holdout)))
    return firsts


def _measure(store: Store, name: str, playbook: Playbook,
             firsts: dict[str, tuple[datetime, bool]], latest: datetime) -> Uplift | None:
    assert playbook.outcome is not None
    outcome = playbook.outcome
    due = {e: (at + outcome.after, held) for e, (at, held) in firsts.items()
           if at + outcome.after <= latest}
    if not due:
        return None
    wanted = [membership(s) for s in (*outcome.in_, *outcome.not_in)]
    dimensions = sorted({d for d, _ in wanted})
    marks = ", ".join("?" for _ in dimensions)
    rows = store.backend.fetch(
        "SELECT entity_id, dimension, segment, entered_at, exited_at FROM memberships "
        f"WHERE level = ? AND dimension IN ({marks})", [playbook.entity, *dimensions])
    held: dict[str, list[tuple[str, str, datetime, datetime | None]]] = {}
    for entity, dimension, segment, entered, exited in rows:
        if str(entity) in due:
            held.setdefault(str(entity), []).append((str(dimension), str(segment), entered,
                                                     exited))
    counts = {True: [0, 0], False: [0, 0]}   # held out? → [entities, successes]
    for entity, (moment, in_holdout) in due.items():
        present = {(d, s) for d, s, entered, exited in held.get(entity, [])
                   if entered <= moment and (exited is None or exited > moment)}
        counts[in_holdout][0] += 1
        counts[in_holdout][1] += int(_succeeded(present, outcome))
    return uplift(name, describe(outcome), Arm(*counts[False]), Arm(*counts[True]))


def _succeeded(present: set[tuple[str, str]], outcome: Outcome) -> bool:
    inside: Sequence[tuple[str, str]] = [membership(s) for s in outcome.in_]
    outside = [membership(s) for s in outcome.not_in]
    return (not inside or any(m in present for m in inside)) and \
        not any(m in present for m in outside)
