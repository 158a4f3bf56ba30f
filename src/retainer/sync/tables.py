"""What each sync believes its destination holds, its log, and undeliverable records.

`sync_state` changes only after a destination confirmed a batch, so the next sync sends
exactly what is missing — whatever happened to the one before.
"""

from __future__ import annotations

SYNC_TABLES: tuple[str, ...] = (
    "CREATE TABLE sync_state (sync VARCHAR NOT NULL, record_key VARCHAR NOT NULL, "
    "entity_id VARCHAR NOT NULL, row_hash VARCHAR NOT NULL, payload VARCHAR, "
    "synced_at TIMESTAMP NOT NULL, PRIMARY KEY (sync, record_key))",
    "CREATE TABLE sync_log (sync_id BIGINT PRIMARY KEY, sync VARCHAR NOT NULL, "
    "destination VARCHAR NOT NULL, run_id BIGINT, started_at TIMESTAMP NOT NULL, "
    "finished_at TIMESTAMP, status VARCHAR NOT NULL, upserted BIGINT, deleted BIGINT, "
    "messages BIGINT, failed BIGINT, error VARCHAR)",
    "CREATE TABLE dead_letters (sync VARCHAR NOT NULL, record_key VARCHAR NOT NULL, "
    "entity_id VARCHAR, payload VARCHAR, error VARCHAR, attempts INTEGER NOT NULL, "
    "failed_at TIMESTAMP NOT NULL, sync_id BIGINT)",
)
