"""Idempotency keys and holdout assignment: both stable hashes, so they never change
between runs, machines or versions of Retainer."""

from __future__ import annotations

import hashlib
from datetime import datetime

_SEPARATOR = "\x1f"  # cannot appear in a name or an id read from a CSV cell by accident


def action_key(playbook: str, entity_id: str, trigger_kind: str, occurrence: datetime,
               action_index: int, recipient: str | None) -> str:
    """The ledger's primary key: one per (playbook, entity, trigger occurrence, action,
    recipient). The same occurrence always gives the same key, so it is acted on once."""
    text = _SEPARATOR.join((playbook, entity_id, trigger_kind, occurrence.isoformat(),
                            str(action_index), recipient or ""))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def holdout_draw(salt: str, playbook: str, entity_id: str) -> float:
    """A number in [0, 1) fixed for (salt, playbook, entity): uniform across entities."""
    digest = hashlib.sha256(_SEPARATOR.join((salt, playbook, entity_id)).encode("utf-8"))
    return int(digest.hexdigest()[:15], 16) / 16 ** 15


def is_held_out(share: float, salt: str, playbook: str, entity_id: str) -> bool:
    """Whether the entity is in the playbook's holdout group (a `share` of all entities).
    The draw does not depend on the share, so raising it only adds entities to the group."""
    return share > 0 and holdout_draw(salt, playbook, entity_id) < share
