"""Erasure in the ledger and the decision log: the person becomes a tombstone.

In the ledger, every row about the contact has its contact id (and, for contact playbooks,
entity id) replaced by the tombstone and its payload scrubbed: the `contact` object
becomes `{"id": <tombstone>, "erased": true}` and any other place the person's id, address
or contact fields appear (a task's owner, a title) reads `[erased]`. Rows still waiting
for dispatch are suppressed, so nothing goes out to the person afterwards.

In the decision log only the contact id changes: the decision, its reason, purpose,
channel, jurisdiction and rulebook version stay — they are the record of an automated
decision, which must outlive the data it was about.
"""

from __future__ import annotations

import json
import re
from typing import Any

from retainer.state import Store

ERASED = "[erased]"
# Rows that may have reached a destination: a delete must follow them there.
MAY_BE_DELIVERED = ("sent", "failed", "rejected", "planned")


def forget_contact(store: Store, contact_id: str, tombstone: str) -> list[tuple[str, str, str]]:
    """Anonymise the contact in the ledger and the decision log. Returns (destination,
    stream, action_key) of every action that carried the person's data to a destination,
    so the caller can delete it there. Runs no transaction of its own: call it inside the
    erasure's transaction."""
    rows = store.backend.fetch(
        "SELECT action_key, contact_id, entity_id, level, status, destination, stream, "
        "payload, reason FROM ledger WHERE contact_id = ? OR (level = 'contact' AND "
        "entity_id = ?)", [contact_id, contact_id])
    delivered: list[tuple[str, str, str]] = []
    for key, contact, entity, level, status, destination, stream, payload, reason in rows:
        data = json.loads(payload) if payload else {}
        secrets = _personal_values(contact_id, data)
        scrubbed = _scrub(data, secrets, tombstone)
        new_status = "suppressed" if status in ("planned", "failed") else status
        store.backend.execute(
            "UPDATE ledger SET contact_id = ?, entity_id = ?, payload = ?, reason = ?, "
            "status = ?, error = ? WHERE action_key = ?",
            [tombstone if contact == contact_id else contact,
             tombstone if level == "contact" and entity == contact_id else entity,
             json.dumps(scrubbed, sort_keys=True), _scrub(reason, secrets, tombstone),
             new_status, "the person was forgotten on request" if new_status != status
             else None, key])
        if destination is not None and status in MAY_BE_DELIVERED:
            delivered.append((str(destination), str(stream or ""), str(key)))
    store.backend.execute("UPDATE decisions SET contact_id = ? WHERE contact_id = ?",
                          [tombstone, contact_id])
    return delivered


def _personal_values(contact_id: str, payload: dict[str, Any]) -> list[str]:
    """The person's id, address and contact fields as they appear in a payload."""
    values = [contact_id]
    contact = payload.get("contact")
    if isinstance(contact, dict):
        values += [str(v) for k, v in contact.items()
                   if k not in ("role", "erased") and v not in (None, "")]
    return sorted(set(values), key=len, reverse=True)  # longest first: "a@b.c" before "a"


def _scrub(value: Any, secrets: list[str], tombstone: str) -> Any:
    """`value` with the person's data gone: the `contact` object reduced to the tombstone,
    and each of `secrets` replaced wherever it appears in text."""
    if isinstance(value, dict):
        return {k: {"id": tombstone, "erased": True} if k == "contact" and isinstance(v, dict)
                else _scrub(v, secrets, tombstone) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, secrets, tombstone) for v in value]
    if isinstance(value, str):
        for secret in secrets:
            value = _token(secret).sub(ERASED, value)
    return value


def _token(secret: str) -> re.Pattern[str]:
    """`secret` as a whole token: a contact id `c1` inside `c12`, `c1@x.org` or a
    timestamp is left alone (the address itself is replaced first: longest first)."""
    return re.compile(rf"(?<![\w@.-]){re.escape(secret)}(?![\w@.-])")
