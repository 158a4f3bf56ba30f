"""Erasure in the ledger and the decision log: the person becomes a tombstone.

In the ledger, every row about the contact has its contact id (and, for contact playbooks,
entity id) replaced by the tombstone and its payload scrubbed: the `contact` object
becomes `{"id": <tombstone>, "erased": true}` and any other place the person's id, address
or contact fields appear (a task's owner, a title) reads `[erased]`. Rows still waiting
for dispatch are suppressed, so nothing goes out to the person afterwards.

In the decision log the contact id becomes the tombstone: the decision, its reason,
purpose, channel, jurisdiction and rulebook version stay — they are the record of an
automated decision, which must outlive the data it was about. Free text that may quote the
person (an error a destination sent back) is scrubbed by the caller (privacy/scrub.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from retainer.privacy.scrub import longest_first, scrub
from retainer.state import Store

# Rows that may have reached a destination: a delete must follow them there. A retired row
# was pending (planned, or failed), and may have arrived before its act was cut short.
MAY_BE_DELIVERED = ("sent", "failed", "rejected", "planned", "retired")


def forget_contact(store: Store, contact_id: str, tombstone: str, known: Sequence[str] = ()
                   ) -> tuple[list[tuple[str, str, str]], list[str]]:
    """Anonymise the contact in the ledger and the decision log. Returns (destination,
    stream, action_key) of every action that carried the person's data to a destination,
    so the caller can delete it there, and every value of theirs found (id, address,
    contact fields; `known` values to start with), so the caller can scrub free text.
    Runs no transaction of its own: call it inside the erasure's transaction."""
    rows = store.backend.fetch(
        "SELECT action_key, contact_id, entity_id, level, status, destination, stream, "
        "payload FROM ledger WHERE contact_id = ? OR (level = 'contact' AND entity_id = ?)",
        [contact_id, contact_id])
    payloads = {str(r[0]): json.loads(r[7]) if r[7] else {} for r in rows}
    secrets = longest_first([contact_id, *known, *(
        value for data in payloads.values() for value in _personal_values(data))])
    delivered: list[tuple[str, str, str]] = []
    for key, contact, entity, level, status, destination, stream, _ in rows:
        new_status = "suppressed" if status in ("planned", "failed") else status
        update = "UPDATE ledger SET contact_id = ?, entity_id = ?, payload = ?, status = ?"
        values = [tombstone if contact == contact_id else contact,
                  tombstone if level == "contact" and entity == contact_id else entity,
                  json.dumps(_scrubbed(payloads[key], tombstone, secrets), sort_keys=True),
                  new_status]
        if new_status != status:  # nothing goes out to them any more
            update += ", error = ?"
            values.append("the person was forgotten on request")
        store.backend.execute(update + " WHERE action_key = ?", [*values, key])
        if destination is not None and status in MAY_BE_DELIVERED:
            delivered.append((str(destination), str(stream or ""), str(key)))
    store.backend.execute("UPDATE decisions SET contact_id = ? WHERE contact_id = ?",
                          [tombstone, contact_id])
    return delivered, secrets


def _personal_values(payload: dict[str, Any]) -> list[str]:
    """The address and contact fields in a payload's `contact` object."""
    contact = payload.get("contact")
    if not isinstance(contact, dict):
        return []
    return [str(v) for k, v in contact.items() if k not in ("role", "erased")
            and v not in (None, "")]


def _scrubbed(payload: dict[str, Any], tombstone: str, secrets: Sequence[str]
              ) -> dict[str, Any]:
    """The payload with the `contact` object reduced to the tombstone and the secrets
    gone from everything else (a task's owner, a title)."""
    return {k: {"id": tombstone, "erased": True} if k == "contact" and isinstance(v, dict)
            else scrub(v, secrets) for k, v in payload.items()}
