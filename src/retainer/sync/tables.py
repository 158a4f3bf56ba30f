"""What each sync believes its destination holds, its log, and undeliverable records.

`sync_state` changes only after a destination confirmed a batch, so the next sync sends
exactly what is missing — whatever happened to the one before. For `changes` syncs it holds
the key of every message sent: the cursor (`sync_cursors`) says where in history the next
sync starts looking, and the keys that no change is sent twice — after a re-run at the same
as_of, or after history was rebuilt behind the cursor — and that an erasure finds every
message about a person.
"""

from __future__ import annotations

SYNC_TABLES: tuple[str, ...] = (
    "CREATE TABLE sync_state (sync VARCHAR NOT NULL, record_key VARCHAR NOT NULL, "
    "entity_id VARCHAR NOT NULL, row_hash VARCHAR NOT NULL, payload VARCHAR, "
    "changed_at TIMESTAMP, synced_at TIMESTAMP NOT NULL, PRIMARY KEY (sync, record_key))",
    "CREATE INDEX sync_state_entity ON sync_state (entity_id)",
    "CREATE TABLE sync_cursors (sync VARCHAR PRIMARY KEY, cursor_at TIMESTAMP NOT NULL, "
    "updated_at TIMESTAMP NOT NULL)",
    "CREATE TABLE sync_log (sync_id BIGINT PRIMARY KEY, sync VARCHAR NOT NULL, "
    "destination VARCHAR NOT NULL, mode VARCHAR, stream VARCHAR, run_id BIGINT, "
    "started_at TIMESTAMP NOT NULL, finished_at TIMESTAMP, status VARCHAR NOT NULL, "
    "upserted BIGINT, deleted BIGINT, messages BIGINT, failed BIGINT, pending BIGINT, "
    "error VARCHAR)",
    "CREATE TABLE dead_letters (sync VARCHAR NOT NULL, record_key VARCHAR NOT NULL, "
    "entity_id VARCHAR, op VARCHAR, payload VARCHAR, error VARCHAR, "
    "attempts INTEGER NOT NULL, failed_at TIMESTAMP NOT NULL, sync_id BIGINT, "
    "PRIMARY KEY (sync, record_key))",
)
