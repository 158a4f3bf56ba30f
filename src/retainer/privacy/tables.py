"""The decision log (append-only record of every automated decision that reached, or was
kept from, a person), erasure tombstones, and the store's secret salt."""

from __future__ import annotations

PRIVACY_TABLES: tuple[str, ...] = (
    "CREATE TABLE decisions (decision_id BIGINT PRIMARY KEY, decided_at TIMESTAMP NOT NULL, "
    "action_key VARCHAR, playbook VARCHAR, account_id VARCHAR, contact_id VARCHAR, "
    "purpose VARCHAR NOT NULL, channel VARCHAR, outcome VARCHAR NOT NULL, "
    "reason VARCHAR NOT NULL, legal_basis VARCHAR, jurisdiction VARCHAR, policy VARCHAR, "
    "consent_recorded_at TIMESTAMP, rulebook_hash VARCHAR NOT NULL, act_id BIGINT)",
    "CREATE TABLE erasures (subject_hash VARCHAR PRIMARY KEY, kind VARCHAR NOT NULL, "
    "erased_at TIMESTAMP NOT NULL, propagated VARCHAR)",
    "CREATE TABLE store_secrets (name VARCHAR PRIMARY KEY, secret VARCHAR NOT NULL)",
)
