"""Cooldowns and frequency caps, counted over the ledger across playbooks.

* cooldown — per (playbook, entity): no new firing while the last one (an action, a
  suppression or a holdout: anything decided for that occurrence) is younger than it.
* caps — at most `max` actions per account within `per` (an action to several contacts
  counts once), and at most `max` messages per contact within `per`, whatever playbook
  sent them. Only what was or will be delivered counts: planned, sent, recorded, failed.

Times are the as_of of the act that planned each row, so acting on a past as_of counts
what was acted on around it. The counts grow as the plan fires, so one act cannot exceed
a cap on its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlglot import exp

from retainer.playbooks.ledger import FIRED
from retainer.playbooks.plan import Item
from retainer.rulebook.playbook_models import Cap, Caps, Playbook
from retainer.state import Store

COUNTED = ("planned", "sent", "recorded", "failed")


def effective_caps(playbook: Playbook, project: Caps | None) -> Caps:
    """A playbook's caps: its own, each falling back to the project's."""
    own = playbook.caps or Caps()
    base = project or Caps()
    return Caps(account=own.account or base.account, contact=own.contact or base.contact)


def span(value: timedelta) -> str:
    """A period as reasons print it: whole days in days (`7d`, `30d`), else hours."""
    if value % timedelta(days=1) == timedelta(0):
        return f"{value.days}d"
    return f"{int(value.total_seconds() // 3600)}h"


def horizon(durations: Iterable[timedelta | None]) -> timedelta:
    return max([d for d in durations if d is not None], default=timedelta(0))


@dataclass
class Limits:
    last_fired: dict[tuple[str, str], datetime] = field(default_factory=dict)
    account_actions: dict[str, dict[tuple[str, str, datetime, int], datetime]] = field(
        default_factory=dict)
    contact_messages: dict[str, list[datetime]] = field(default_factory=dict)

    @classmethod
    def read(cls, store: Store, since: datetime) -> Limits:
        """What the ledger holds from `since` on."""
        limits = cls()
        query = (exp.select("playbook", "entity_id", "account_id", "contact_id", "action_kind",
                            "status", "as_of", "occurrence", "action_index").from_("ledger")
                 .where(exp.GT(this=exp.column("as_of"), expression=exp.Placeholder()))
                 .where(exp.column("status").isin(*(exp.Literal.string(s) for s in FIRED))))
        rows = store.backend.fetch(query, [since])
        for playbook, entity, account, contact, kind, status, as_of, occurrence, index in rows:
            limits._note(str(playbook), str(entity), account, contact, str(kind), str(status),
                         as_of, occurrence, int(index))
        return limits

    def note(self, item: Item, as_of: datetime) -> None:
        status = {"fire": "planned", "held_out": "held_out"}.get(item.outcome)
        if status is not None:
            self._note(item.playbook, item.entity_id, item.account_id, item.contact_id,
                       item.action_kind, status, as_of, item.occurrence, item.action_index)

    def _note(self, playbook: str, entity: str, account: str | None, contact: str | None,
              kind: str, status: str, as_of: datetime, occurrence: datetime,
              index: int) -> None:
        key = (playbook, entity)
        if key not in self.last_fired or as_of > self.last_fired[key]:
            self.last_fired[key] = as_of
        if status not in COUNTED:
            return
        if account is not None:
            self.account_actions.setdefault(account, {})[(playbook, entity, occurrence,
                                                          index)] = as_of
        if contact is not None and kind == "message":
            self.contact_messages.setdefault(contact, []).append(as_of)

    def cooldown(self, playbook: str, entity: str, cooldown: timedelta | None,
                 as_of: datetime) -> str | None:
        """Why a new firing is too soon, or None."""
        last = self.last_fired.get((playbook, entity))
        if cooldown is None or last is None or last <= as_of - cooldown:
            return None
        return f"acted on {last:%Y-%m-%d}; cooldown {span(cooldown)}"

    def account_cap(self, cap: Cap | None, account: str | None, action: tuple[
            str, str, datetime, int], as_of: datetime) -> str | None:
        if cap is None or account is None:
            return None
        done = self.account_actions.get(account, {})
        if action in done:
            return None  # one action to several contacts counts once
        recent = sum(1 for moment in done.values() if moment > as_of - cap.per)
        if recent < cap.max:
            return None
        return (f"account {account} had {recent} action(s) in the last "
                f"{span(cap.per)} (cap {cap.max})")

    def contact_cap(self, cap: Cap | None, contact: str | None, as_of: datetime
                    ) -> str | None:
        if cap is None or contact is None:
            return None
        recent = sum(1 for m in self.contact_messages.get(contact, []) if m > as_of - cap.per)
        if recent < cap.max:
            return None
        return (f"contact {contact} had {recent} message(s) in the last "
                f"{span(cap.per)} (cap {cap.max})")
