"""Take a forgotten person out of the destinations Retainer delivered their data to.

Two kinds of deliveries carry a person: syncs of contacts (each sync forgets the records it
keeps for them, through its own state — a sync removed from the rulebook too, or says why
it could not) and playbook actions that went to a destination with their data (a message,
a task assigned through them). Each destination that can delete gets a delete record per
action key; one that cannot (a message already in someone's queue) is reported so its
owner can act. A failure is kept, never swallowed: the caller records it with the
tombstone and `retainer forget` for the same person tries again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from retainer.destinations import Record, open_destination
from retainer.errors import RetainerError
from retainer.rulebook.loader import Rulebook
from retainer.state import Store


@dataclass(frozen=True)
class Delivered:
    """An action delivered with the person's data: where, and under which key."""

    destination: str
    stream: str
    key: str
    entity_id: str = ""


@dataclass(frozen=True)
class Outcome:
    """What one destination did with the deletion."""

    destination: str
    what: str                         # "sync crm", "action <key>"
    ok: bool
    detail: str
    delivered: Delivered | None = None    # an action delivery left to delete when failed

    def summary(self) -> dict[str, Any]:
        return {"destination": self.destination, "what": self.what, "ok": self.ok,
                "detail": self.detail}


def propagate(rulebook: Rulebook, store: Store, ids: Sequence[str],
              delivered: Sequence[Delivered]) -> list[Outcome]:
    outcomes = _syncs(rulebook, store, ids)
    by_destination: dict[str, list[Delivered]] = {}
    for item in delivered:
        by_destination.setdefault(item.destination, []).append(item)
    for name, items in sorted(by_destination.items()):
        outcomes += _actions(rulebook, name, items)
    return outcomes


def _syncs(rulebook: Rulebook, store: Store, ids: Sequence[str]) -> list[Outcome]:
    """Every sync that delivered them, syncs removed from the rulebook included (their
    state may say a destination still holds records about them)."""
    if not ids:
        return []
    from retainer.sync.erasure import forget_entities
    return [Outcome(e.destination, f"sync {e.sync}", e.ok, e.detail)
            for e in forget_entities(rulebook, store, ids, "contact")]


def _actions(rulebook: Rulebook, name: str, items: list[Delivered]) -> list[Outcome]:
    """Delete the delivered actions at one destination, in one delivery per stream."""
    try:
        destination = open_destination(name, rulebook)
    except RetainerError as exc:
        return [Outcome(name, f"action {i.key}", False, f"failed: {exc.problem.message}", i)
                for i in items]
    try:
        if not destination.supports_delete:
            return [Outcome(name, f"action {i.key}", True,
                            f"not deleted: a {destination.kind} destination cannot take back "
                            "what it received; ask its owner to erase it") for i in items]
        outcomes: list[Outcome] = []
        streams: dict[str, list[Delivered]] = {}
        for item in items:
            streams.setdefault(item.stream, []).append(item)
        for stream, group in sorted(streams.items()):
            try:
                destination.deliver(stream, [Record(i.key, i.entity_id, op="delete")
                                             for i in group])
            except RetainerError as exc:
                outcomes += [Outcome(name, f"action {i.key}", False,
                                     f"failed: {exc.problem.message}", i) for i in group]
                continue
            outcomes += [Outcome(name, f"action {i.key}", True, f"deleted from {stream}")
                         for i in group]
        return outcomes
    finally:
        destination.close()
