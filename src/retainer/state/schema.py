"""The store's schema, as numbered migrations applied forward when a store is opened.

A store records the version it was written with; an older store is upgraded in place (each
migration in its own transaction), a newer one is refused rather than misread. Statements are
written once in DuckDB's dialect and rendered by sqlglot for each backend.
"""

from __future__ import annotations

from functools import cache

import sqlglot
from sqlglot import exp

from retainer.playbooks.tables import ACTS_RETIRED, LEDGER_TABLES
from retainer.privacy.tables import PRIVACY_TABLES
from retainer.sync.tables import SYNC_TABLES

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: runs, membership intervals, health per run, quality per run
    (
        "CREATE TABLE runs (run_id BIGINT PRIMARY KEY, kind VARCHAR NOT NULL, "
        "as_of TIMESTAMP NOT NULL, started_at TIMESTAMP NOT NULL, finished_at TIMESTAMP, "
        "status VARCHAR NOT NULL, rulebook_hash VARCHAR NOT NULL, git_commit VARCHAR, "
        "engine VARCHAR NOT NULL, rows_read BIGINT, rows_rejected BIGINT, duration_s DOUBLE, "
        "error VARCHAR, in_history BOOLEAN NOT NULL)",
        "CREATE TABLE memberships (level VARCHAR NOT NULL, entity_id VARCHAR NOT NULL, "
        "dimension VARCHAR NOT NULL, segment VARCHAR NOT NULL, entered_at TIMESTAMP NOT NULL, "
        "exited_at TIMESTAMP, entered_run BIGINT NOT NULL, exited_run BIGINT, "
        "rulebook_hash VARCHAR NOT NULL, reason VARCHAR)",
        "CREATE TABLE health (run_id BIGINT NOT NULL, entity_id VARCHAR NOT NULL, "
        "score DOUBLE, band VARCHAR)",
        "CREATE TABLE quality (run_id BIGINT NOT NULL, source VARCHAR NOT NULL, "
        "rows_read BIGINT, missing_id BIGINT, duplicate_id BIGINT, unknown_id BIGINT, "
        "bad_time BIGINT, after_as_of BIGINT, future_dated BIGINT)",
    ),
    # 2: the rulebook's files per run (diff --against-run), health component scores, and an
    #    index for the open-interval lookups every run makes
    (
        "ALTER TABLE runs ADD COLUMN rulebook_files VARCHAR",
        "ALTER TABLE runs ADD COLUMN health_components VARCHAR",
        "ALTER TABLE health ADD COLUMN components DOUBLE[]",
        "CREATE INDEX memberships_entity ON memberships (entity_id, dimension)",
    ),
    # 3: playbooks' action ledger, syncs' state and log, the decision log and erasures
    (*LEDGER_TABLES, *SYNC_TABLES, *PRIVACY_TABLES),
    # 4: each act's count of the pending actions it retired
    ACTS_RETIRED,
)
CURRENT_VERSION = len(MIGRATIONS)


@cache
def store_tables() -> frozenset[str]:
    """Every table of the store, for qualifying names (parsed once, when first needed)."""
    names = {"retainer_schema"}
    for migration in MIGRATIONS:
        for statement in migration:
            tree = sqlglot.parse_one(statement, read="duckdb")
            if isinstance(tree, exp.Create) and tree.kind == "TABLE":
                table = tree.find(exp.Table)
                assert table is not None
                names.add(table.name)
    return frozenset(names)

