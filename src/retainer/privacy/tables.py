"""Erasure tombstones (salted hashes of forgotten people) and the store's secret salt."""

from __future__ import annotations

PRIVACY_TABLES: tuple[str, ...] = (
    "CREATE TABLE erasures (subject_hash VARCHAR PRIMARY KEY, kind VARCHAR NOT NULL, "
    "erased_at TIMESTAMP NOT NULL, propagated VARCHAR)",
    "CREATE TABLE store_secrets (name VARCHAR PRIMARY KEY, secret VARCHAR NOT NULL)",
)
