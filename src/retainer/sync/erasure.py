"""Erasure at the destinations: what syncs delivered about a person is taken back.

For every sync of the entity's level: records the destination holds for the entity are
deleted there (a files or PostgreSQL row is removed; a webhook receiver gets a `delete`
record it must honour; RabbitMQ consumers get a `delete` message), then forgotten in
`sync_state` along with any dead letter holding the entity's data. A `changes` sync sends a
delete for every message it sent about the entity, then one erasure message. A sync that
never sent anything about the entity is left alone: it must not learn the id now.
"""

from __future__ import annotations

from typing import Literal

from retainer.destinations import open_destination
from retainer.destinations.base import Record
from retainer.errors import RetainerError
from retainer.rulebook.loader import Rulebook
from retainer.state import Store
from retainer.sync import state
from retainer.sync.plan import stream_of


def erasure_key(entity_id: str) -> str:
    return f"{entity_id}:erased"


def forget_entity(rulebook: Rulebook, store: Store, entity_id: str,
                  level: Literal["account", "contact"]) -> list[tuple[str, str]]:
    """Take the entity back from every sync's destination; (sync, outcome) per sync that
    held or may have sent something. An outcome starting with "failed" means the
    destination still holds the records (they stay in `sync_state`, so a retry finds them)."""
    outcomes: list[tuple[str, str]] = []
    for name, sync in rulebook.syncs.items():
        if sync.entity != level:
            continue
        held = state.held_by_entity(store, name, entity_id)
        if not held:
            continue  # nothing was sent about them: the destination must not learn the id
        stream = stream_of(name, sync)
        if sync.mode == "changes":
            # Every message sent about the entity is withdrawn (a files or PostgreSQL
            # destination drops its rows), then one message says the entity is erased.
            records = [*(Record(key, entity_id, op="delete") for key in held),
                       Record(erasure_key(entity_id), entity_id,
                              {"level": level, "change": "erased"}, op="delete")]
        else:
            records = [Record(key, entity_id, op="delete") for key in held]
        try:
            with open_destination(sync.to, rulebook) as destination:
                if not destination.supports_delete:
                    state.forget(store, name, held)
                    outcomes.append((name, f"not deleted: a {destination.kind} destination "
                                           "cannot remove records; ask its owner to erase "
                                           f"{len(held)} record(s) from {stream}"))
                    continue
                destination.deliver(stream, records)
        except RetainerError as exc:
            outcomes.append((name, f"failed: {exc.problem.message}"))
            continue
        state.forget(store, name, held)
        if sync.mode == "changes":
            what = (f"sent an erasure message to {stream}, withdrawing {len(held)} earlier "
                    "message(s)")
        else:
            what = f"deleted {len(held)} record(s) from {stream}"
        outcomes.append((name, what))
    return outcomes
