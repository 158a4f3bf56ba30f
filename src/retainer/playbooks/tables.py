"""The action ledger, the acts that wrote it, and the decision log.

The ledger has one row per (playbook, entity, trigger occurrence, action, recipient); its
primary key is the idempotency key, so planning the same occurrence twice inserts nothing.
Rows move from `planned` to `sent` / `recorded` (kept in the ledger only) / `suppressed`
(the consent gate said no) / `failed` (retried by the next act) / `rejected` (the
destination refused: not retried); `held_out` and `stopped` rows record an occurrence that
was deliberately not acted on, and `capped` and `no_recipient` rows an action held back
while the rest of its occurrence went ahead.

The decision log is append-only: every automated decision that reached, or was kept from, a
person, with its reason and the rulebook version. Only erasure rewrites it (the person's id
becomes a tombstone; the decision itself stays).
Statements are DuckDB SQL rendered for each store backend (see state/schema.py).
"""

from __future__ import annotations

LEDGER_TABLES: tuple[str, ...] = (
    "CREATE TABLE ledger (action_key VARCHAR PRIMARY KEY, act_id BIGINT NOT NULL, "
    "playbook VARCHAR NOT NULL, level VARCHAR NOT NULL, entity_id VARCHAR NOT NULL, "
    "account_id VARCHAR, contact_id VARCHAR, trigger_kind VARCHAR NOT NULL, "
    "segment VARCHAR, occurrence TIMESTAMP NOT NULL, action_index INTEGER NOT NULL, "
    "action_kind VARCHAR NOT NULL, destination VARCHAR, stream VARCHAR, "
    "purpose VARCHAR NOT NULL, channel VARCHAR, status VARCHAR NOT NULL, "
    "holdout BOOLEAN NOT NULL, reason VARCHAR, payload VARCHAR, as_of TIMESTAMP NOT NULL, "
    "planned_at TIMESTAMP NOT NULL, due_at TIMESTAMP, sent_at TIMESTAMP, "
    "attempts INTEGER NOT NULL, error VARCHAR, rulebook_hash VARCHAR NOT NULL)",
    "CREATE INDEX ledger_entity ON ledger (entity_id, playbook)",
    "CREATE INDEX ledger_status ON ledger (status)",
    "CREATE TABLE acts (act_id BIGINT PRIMARY KEY, as_of TIMESTAMP NOT NULL, "
    "run_id BIGINT, started_at TIMESTAMP NOT NULL, finished_at TIMESTAMP, "
    "status VARCHAR NOT NULL, playbooks VARCHAR, planned BIGINT, sent BIGINT, "
    "recorded BIGINT, suppressed BIGINT, failed BIGINT, held_out BIGINT, stopped BIGINT, "
    "deferred BIGINT, error VARCHAR, rulebook_hash VARCHAR NOT NULL)",
    "CREATE TABLE decisions (decision_id BIGINT PRIMARY KEY, decided_at TIMESTAMP NOT NULL, "
    "action_key VARCHAR, playbook VARCHAR, account_id VARCHAR, contact_id VARCHAR, "
    "purpose VARCHAR NOT NULL, channel VARCHAR, outcome VARCHAR NOT NULL, "
    "reason VARCHAR NOT NULL, rule VARCHAR, legal_basis VARCHAR, jurisdiction VARCHAR, "
    "policy VARCHAR, consent_status VARCHAR, consent_recorded_at TIMESTAMP, "
    "consent_source VARCHAR, rulebook_hash VARCHAR NOT NULL, act_id BIGINT)",
    "CREATE INDEX decisions_contact ON decisions (contact_id)",
)
# The acts table counts the pending rows each act retired (those of playbooks no longer in
# the rulebook); acts recorded before it did count none.
ACTS_RETIRED: tuple[str, ...] = (
    "ALTER TABLE acts ADD COLUMN retired BIGINT DEFAULT 0",
)
