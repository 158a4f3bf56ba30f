"""Erasure at the destinations: what syncs delivered about people is taken back.

For every sync of the entities' level: records the destination holds for them are deleted
there (a files or PostgreSQL row is removed; a webhook receiver gets a `delete` record it
must honour; RabbitMQ consumers get a `delete` message), then forgotten in `sync_state`
along with any dead letter holding their data. A `changes` sync sends a delete for every
message it sent about an entity, then one erasure message. A sync that never sent anything
about an entity is left alone: it must not learn the id now. Each destination is opened
once, and all the ids of one erasure go to it together (in batches of its size).

A sync removed from the rulebook whose state says its destination holds records about
them is erased at that destination when it is still declared under `destinations:`
(where and how the sync last delivered is in the sync log); otherwise nothing can reach
it, and that is a failure the erasure reports — never a silent success.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from retainer.destinations import open_destination
from retainer.destinations.base import Destination, Record
from retainer.errors import RetainerError
from retainer.rulebook.loader import Rulebook
from retainer.state import Store
from retainer.sync import state
from retainer.sync.columns import key_columns
from retainer.sync.plan import stream_of

Level = Literal["account", "contact"]


@dataclass(frozen=True)
class Erased:
    """What one sync's destination did with an erasure."""

    sync: str
    destination: str
    ok: bool          # False: the records may still be there, and stay known for a retry
    detail: str


@dataclass(frozen=True)
class _Target:
    sync: str
    destination: str
    stream: str
    mode: str | None
    removed: bool = False       # the sync is no longer in the rulebook


def erasure_key(entity_id: str) -> str:
    return f"{entity_id}:erased"


def forget_entities(rulebook: Rulebook, store: Store, entity_ids: Sequence[str],
                    level: Level) -> list[Erased]:
    """Take the entities back from every destination a sync delivered them to: one outcome
    per sync that holds (or may have sent) something about them. A failed one leaves the
    records in `sync_state`, so the same erasure run again finds them."""
    held = _held(rulebook, store, entity_ids, level)
    # The rulebook's syncs in its order, then the removed ones by name.
    targets = [_target(rulebook, store, name) for name in [
        *(n for n in rulebook.syncs if n in held), *sorted(held.keys() - rulebook.syncs.keys())]]
    outcomes: dict[str, Erased] = {}
    reachable: dict[str, list[_Target]] = {}
    for target in targets:
        if target.removed and target.destination not in rulebook.destinations:
            outcomes[target.sync] = _unreachable(target, held[target.sync])
        else:
            reachable.setdefault(target.destination, []).append(target)
    for name, group in reachable.items():
        try:
            destination = open_destination(name, rulebook)
        except RetainerError as exc:
            outcomes.update((t.sync, _outcome(t, False, f"failed: {exc.problem.message}"))
                            for t in group)
            continue
        try:
            outcomes.update((t.sync, _erase(store, destination, t, held[t.sync], level))
                            for t in group)
        finally:
            destination.close()
    return [outcomes[t.sync] for t in targets]


def removed_holding(rulebook: Rulebook, store: Store, entity_ids: Sequence[str],
                    level: Level) -> dict[str, int]:
    """Per sync no longer in the rulebook: the records its state says it delivered about
    the entities (what `forget_entities` will try to reach)."""
    held = _held(rulebook, store, entity_ids, level)
    return {name: sum(map(len, held[name].values()))
            for name in sorted(held.keys() - rulebook.syncs.keys())}


def _held(rulebook: Rulebook, store: Store, entity_ids: Sequence[str], level: Level
          ) -> dict[str, dict[str, list[str]]]:
    """sync → entity → the keys of the records about it, for the syncs of `level`."""
    held: dict[str, dict[str, list[str]]] = {}
    for item in state.held_by_entities(store, entity_ids):
        sync = rulebook.syncs.get(item.sync)
        if sync.entity == level if sync is not None else _about(rulebook, item, level):
            held.setdefault(item.sync, {}).setdefault(item.entity_id, []).append(
                item.record_key)
    return held


def _about(rulebook: Rulebook, item: state.Held, level: Level) -> bool:
    """Whether a record of a removed sync (its level is gone with it) is about an entity of
    `level`: it is when its payload names the entity in `level`'s key column (a person who is
    their own account names it in both), it is not when the payload names it only in the
    other level's. A record without a payload is a delete that waits: its sync meant it gone."""
    if item.payload is None:
        return True
    mine = key_columns(rulebook, level)[0]
    other = key_columns(rulebook, "contact" if level == "account" else "account")[0]
    return item.payload.get(mine) == item.entity_id or item.payload.get(other) != item.entity_id


def _target(rulebook: Rulebook, store: Store, name: str) -> _Target:
    sync = rulebook.syncs.get(name)
    if sync is not None:
        return _Target(name, sync.to, stream_of(name, sync), sync.mode)
    # The sync log outlives the sync: it says where, and how, it last delivered.
    last = state.log(store, name, limit=1)
    if not last:
        return _Target(name, "", name, None, removed=True)
    return _Target(name, last[0].destination, last[0].stream or name, last[0].mode,
                   removed=True)


def _erase(store: Store, destination: Destination, target: _Target,
           held: dict[str, list[str]], level: Level) -> Erased:
    keys = [key for entity_keys in held.values() for key in entity_keys]
    if not destination.supports_delete:
        state.forget(store, target.sync, keys)
        return _outcome(target, True, f"not deleted: a {destination.kind} destination cannot "
                                      f"remove records; ask its owner to erase {len(keys)} "
                                      f"record(s) from {target.stream}")
    records = []
    for entity_id, entity_keys in held.items():
        records += [Record(key, entity_id, op="delete") for key in entity_keys]
        if target.mode == "changes":
            # Every message sent about the entity is withdrawn (a files or PostgreSQL
            # destination drops its rows), then one message says the entity is erased.
            records.append(Record(erasure_key(entity_id), entity_id,
                                  {"level": level, "change": "erased"}, op="delete"))
    size = max(1, destination.batch_size)
    try:
        for start in range(0, len(records), size):
            destination.deliver(target.stream, records[start:start + size])
    except RetainerError as exc:
        return _outcome(target, False, f"failed: {exc.problem.message}")
    state.forget(store, target.sync, keys)
    if target.mode != "changes":
        return _outcome(target, True, f"deleted {len(keys)} record(s) from {target.stream}")
    sent = "an erasure message" if len(held) == 1 else f"{len(held)} erasure messages"
    return _outcome(target, True, f"sent {sent} to {target.stream}, withdrawing {len(keys)} "
                                  "earlier message(s)")


def _outcome(target: _Target, ok: bool, detail: str) -> Erased:
    removed = (f" (sync '{target.sync}' is no longer in the rulebook; destination "
               f"'{target.destination}' still is)") if target.removed else ""
    return Erased(target.sync, target.destination, ok, detail + removed)


def _unreachable(target: _Target, held: dict[str, list[str]]) -> Erased:
    records = sum(len(keys) for keys in held.values())
    where = (f"its destination '{target.destination}' is not declared under "
             "'destinations:'" if target.destination else "its destination is not known")
    return Erased(target.sync, target.destination or "?", False,
                  f"not reached: sync '{target.sync}' is no longer in the rulebook and "
                  f"{where}, so {records} record(s) it delivered about them may still be in "
                  f"{target.stream}; declare the destination again (or put the sync back) and "
                  "run the same 'retainer forget' again, or have the destination's owner "
                  f"delete them, then run 'retainer sync --prune {target.sync}'")
