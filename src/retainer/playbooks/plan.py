"""An act's plan: every action a playbook would take now, or the reason it will not.

A plan is data. `retainer act --dry-run` prints it; `retainer act` writes the items that
fire (and the holdouts and stops, which are decisions too) to the ledger and dispatches
them. Nothing in a plan has touched the store or a destination.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# What becomes of a planned item.
FIRE = "fire"              # written to the ledger as `planned`, then dispatched
HELD_OUT = "held_out"      # in the holdout group: recorded, nothing sent
STOPPED = "stopped"        # another playbook's state stops this one: recorded
COOLDOWN = "cooldown"      # fired for this entity too recently: not recorded, tried again
CAPPED = "capped"          # a frequency cap is reached: not recorded, tried again
DONE = "done"              # this occurrence is in the ledger already: nothing to do
NO_MATCH = "no_match"      # the trigger happened but `when` does not hold: tried again
NO_RECIPIENT = "no_recipient"  # nobody to reach (no contact with the role)
RECORDED_OUTCOMES = (FIRE, HELD_OUT, STOPPED)
# Held back while the rest of its occurrence fires: the occurrence is then done, so these
# are recorded (with their reason) rather than tried again.
LEFT_BEHIND = (CAPPED, NO_RECIPIENT)
OUTCOMES = (FIRE, HELD_OUT, STOPPED, COOLDOWN, CAPPED, NO_MATCH, NO_RECIPIENT, DONE)


@dataclass(frozen=True)
class Item:
    """One action for one entity (and recipient) at one trigger occurrence."""

    key: str
    playbook: str
    level: str
    entity_id: str
    account_id: str | None
    contact_id: str | None          # the person it reaches, if any
    trigger_kind: str               # enter, exit, in, when
    segment: str | None
    occurrence: datetime
    action_index: int
    action_kind: str                # task, route, message, webhook
    destination: str | None         # None: kept in the ledger only
    stream: str | None
    purpose: str
    channel: str | None
    outcome: str                    # one of OUTCOMES
    why: str                        # the trigger, and the `when` values
    why_not: str | None = None      # for outcomes other than FIRE
    summary: str = ""               # what it does: "task → ana@…: Activation call: Acme"
    payload: dict[str, Any] = field(default_factory=dict)
    due_at: datetime | None = None
    holdout: bool = False
    consent: str | None = None      # a dry run's preview of the consent decision

    @property
    def occurrence_key(self) -> tuple[str, str, str, datetime]:
        return self.playbook, self.entity_id, self.trigger_kind, self.occurrence


@dataclass(frozen=True)
class ActPlan:
    as_of: datetime
    run_id: int | None
    rulebook_hash: str
    playbooks: tuple[str, ...]
    items: tuple[Item, ...]
    planned_at: datetime

    def firing(self) -> list[Item]:
        return [i for i in self.items if i.outcome == FIRE]

    def to_record(self) -> list[Item]:
        """What `act` writes to the ledger: actions, holdouts and stops, and the actions
        held back in an occurrence that fired (it will not be planned again)."""
        fired = {i.occurrence_key for i in self.items if i.outcome == FIRE}
        return [i for i in self.items if i.outcome in RECORDED_OUTCOMES or (
            i.outcome in LEFT_BEHIND and i.occurrence_key in fired)]

    def counts(self) -> dict[str, Counter[str]]:
        """Per playbook, how many items have each outcome."""
        counts: dict[str, Counter[str]] = {name: Counter() for name in self.playbooks}
        for item in self.items:
            counts.setdefault(item.playbook, Counter())[item.outcome] += 1
        return counts
