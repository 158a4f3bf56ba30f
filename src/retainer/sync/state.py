"""The sync tables of the state store: known state, cursors, dead letters and the log.

Every write that follows a delivery happens in one store transaction per batch, after the
destination confirmed it: the store never claims more than the destination holds.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlglot import exp

from retainer import journal
from retainer.destinations.base import Record
from retainer.state import Store


@dataclass(frozen=True)
class Known:
    """What the destination is known to hold for one record key."""

    entity_id: str
    row_hash: str
    payload: dict[str, Any] | None


@dataclass(frozen=True)
class DeadLetter:
    sync: str
    record_key: str
    entity_id: str | None
    op: str
    payload: dict[str, Any] | None
    error: str
    attempts: int
    failed_at: datetime


@dataclass(frozen=True)
class LogEntry:
    sync_id: int
    sync: str
    destination: str
    mode: str | None
    stream: str | None
    run_id: int | None
    started_at: datetime
    finished_at: datetime | None
    status: str
    upserted: int | None
    deleted: int | None
    messages: int | None
    failed: int | None
    pending: int | None
    error: str | None


# Record keys named in one statement: far below any driver's limit on parameters.
KEYS_PER_STATEMENT = 1000
COUNTS = ("upserted", "deleted", "messages", "failed", "pending")


def _literal(value: str) -> exp.Expr:
    return exp.Literal.string(value)


def known_state(store: Store, sync: str, since: datetime | None = None,
                payloads: bool = True) -> dict[str, Known]:
    """What the destination holds; for a changes sync, the messages sent about changes at
    or after `since`. Without `payloads` only keys and hashes are read (all a sync needs)."""
    payload = exp.column("payload") if payloads else exp.cast(exp.null(), "VARCHAR")
    query = (exp.select("record_key", "entity_id", "row_hash", payload.as_("payload"))
             .from_("sync_state").where(exp.column("sync").eq(_literal(sync))))
    if since is not None:
        query = query.where(exp.GTE(this=exp.column("changed_at"),
                                    expression=exp.cast(exp.Literal.string(
                                        since.isoformat(sep=" ")), "TIMESTAMP")))
    rows = store.backend.fetch(query)
    return {str(key): Known(str(entity), str(digest), json.loads(payload) if payload else None)
            for key, entity, digest, payload in rows}


def cursor(store: Store, sync: str) -> datetime | None:
    rows = store.backend.fetch(exp.select("cursor_at").from_("sync_cursors")
                               .where(exp.column("sync").eq(_literal(sync))))
    return rows[0][0] if rows else None


def rebuilt_from(store: Store, sync: str, cursor_at: datetime) -> datetime | None:
    """Where history was rebuilt (`backfill --replace`) before changes sync `sync`'s cursor
    since its last successful delivery, or None.

    History otherwise only grows at its end, so a run in history before the cursor that is
    newer than the run the last delivery sent from was recorded after history was dropped
    from its as_of on; the earliest such run is where the rebuilt history begins. The last
    delivery is the one logged as succeeded: that entry is written in the transaction that
    moves the cursor (`finish`), so it is the delivery that put the cursor where it is. The
    sync never reaches back before the first change it sent: one started after history
    began never promised the changes before it."""
    last = (exp.select("run_id").from_("sync_log")
            .where(exp.column("sync").eq(exp.Placeholder()))
            .where(exp.column("mode").eq(_literal("changes")))
            .where(exp.column("status").eq(_literal("succeeded")))
            .order_by(exp.Ordered(this=exp.column("sync_id"), desc=True)).limit(1))
    rows = store.backend.fetch(last, [sync])
    if not rows or rows[0][0] is None:
        return None
    later = (exp.select(exp.Min(this=exp.column("as_of"))).from_("runs")
             .where(exp.column("in_history"))
             .where(exp.GT(this=exp.column("run_id"), expression=exp.Placeholder()))
             .where(exp.LT(this=exp.column("as_of"), expression=exp.Placeholder())))
    rebuilt = store.backend.fetch(later, [int(rows[0][0]), cursor_at])[0][0]
    if not isinstance(rebuilt, datetime):
        return None
    first = (exp.select(exp.Min(this=exp.column("changed_at"))).from_("sync_state")
             .where(exp.column("sync").eq(exp.Placeholder())))
    began = store.backend.fetch(first, [sync])[0][0]
    if not isinstance(began, datetime) or began >= cursor_at:
        return None
    return max(rebuilt, began)


def confirm(store: Store, sync: str, records: Sequence[Record], hashes: Mapping[str, str],
            changed_at: Mapping[str, datetime], now: datetime) -> None:
    """Record a batch the destination confirmed, and clear its dead letters."""
    import pyarrow as pa

    keys = [r.key for r in records]
    held = [r for r in records if r.op == "upsert"]
    store.backend.load("sync_batch", pa.table({
        "record_key": pa.array(keys, pa.string()),
        "held": pa.array([r.op == "upsert" for r in records], pa.bool_()),
        "entity_id": pa.array([r.entity_id for r in records], pa.string()),
        "row_hash": pa.array([hashes.get(r.key, "") for r in records], pa.string()),
        "payload": pa.array([json.dumps(r.payload, sort_keys=True, default=str)
                             if r.op == "upsert" else None for r in records], pa.string()),
        "changed_at": pa.array([changed_at.get(r.key) for r in records], pa.timestamp("us")),
    }))
    try:
        with store.backend.transaction():
            store.backend.execute("DELETE FROM sync_state WHERE sync = ? AND record_key IN "
                                  "(SELECT record_key FROM sync_batch)", [sync])
            if held:
                store.backend.execute(
                    "INSERT INTO sync_state (sync, record_key, entity_id, row_hash, payload, "
                    "changed_at, synced_at) SELECT ?, record_key, entity_id, row_hash, "
                    "payload, changed_at, ? FROM sync_batch WHERE held", [sync, now])
            store.backend.execute("DELETE FROM dead_letters WHERE sync = ? AND record_key IN "
                                  "(SELECT record_key FROM sync_batch)", [sync])
    finally:
        store.backend.execute("DROP TABLE IF EXISTS sync_batch")


def dead_letter_attempts(store: Store, sync: str) -> dict[str, int]:
    """Key → attempts so far of each of `sync`'s records in the dead-letter store: all a sync
    reads of it, once, when it is planned."""
    query = (exp.select("record_key", "attempts").from_("dead_letters")
             .where(exp.column("sync").eq(exp.Placeholder())))
    return {str(k): int(a) for k, a in store.backend.fetch(query, [sync])}


def dead_letter(store: Store, sync: str, records: Sequence[Record], error: str,
                attempts: int, sync_id: int, now: datetime, earlier: Mapping[str, int]
                ) -> None:
    """Keep records the destination did not take, counting attempts across syncs (`earlier`:
    the attempts the dead-letter store held when the sync was planned)."""
    import pyarrow as pa

    store.backend.load("sync_failed", pa.table({
        "record_key": pa.array([r.key for r in records], pa.string()),
        "entity_id": pa.array([r.entity_id for r in records], pa.string()),
        "op": pa.array([r.op for r in records], pa.string()),
        "payload": pa.array([json.dumps(r.payload, sort_keys=True, default=str)
                             for r in records], pa.string()),
        "attempts": pa.array([earlier.get(r.key, 0) + attempts for r in records], pa.int64()),
    }))
    try:
        with store.backend.transaction():
            store.backend.execute("DELETE FROM dead_letters WHERE sync = ? AND record_key IN "
                                  "(SELECT record_key FROM sync_failed)", [sync])
            store.backend.execute(
                "INSERT INTO dead_letters (sync, record_key, entity_id, op, payload, error, "
                "attempts, failed_at, sync_id) SELECT ?, record_key, entity_id, op, payload, "
                "?, attempts, ?, ? FROM sync_failed", [sync, error[:2000], now, sync_id])
    finally:
        store.backend.execute("DROP TABLE IF EXISTS sync_failed")


def drop_dead_letters(store: Store, sync: str, keys: Collection[str]) -> None:
    """Forget dead letters no longer needed (their entity changed again, or left)."""
    if keys:
        with store.backend.transaction():
            _delete_keys(store, "dead_letters", sync, sorted(keys))


def dead_letters(store: Store, sync: str | None = None) -> list[DeadLetter]:
    query = exp.select("sync", "record_key", "entity_id", "op", "payload", "error",
                       "attempts", "failed_at").from_("dead_letters").order_by("sync",
                                                                              "record_key")
    if sync is not None:
        query = query.where(exp.column("sync").eq(_literal(sync)))
    return [DeadLetter(str(s), str(k), e, str(o or "upsert"), json.loads(p) if p else None,
                       str(err or ""), int(a), t)
            for s, k, e, o, p, err, a, t in store.backend.fetch(query)]


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), KEYS_PER_STATEMENT):
        yield values[start:start + KEYS_PER_STATEMENT]


def _among(column: str, values: Sequence[str]) -> exp.Expr:
    return exp.column(column).isin(*(exp.Placeholder() for _ in values))


def _delete_keys(store: Store, table: str, sync: str, keys: Sequence[str]) -> None:
    """Delete `sync`'s rows of `table` with these record keys, naming many in a statement."""
    for chunk in _chunks(keys):
        store.backend.execute(exp.delete(table, where=exp.and_(
            exp.column("sync").eq(exp.Placeholder()), _among("record_key", chunk))),
            [sync, *chunk])


# --- the log -------------------------------------------------------------------------------

def begin(store: Store, sync: str, destination: str, mode: str, stream: str,
          run_id: int | None, now: datetime) -> int:
    return journal.begin(store, "sync_log", "sync_id", {
        "sync": sync, "destination": destination, "mode": mode, "stream": stream,
        "run_id": run_id, "started_at": now,
        **dict.fromkeys(COUNTS, 0)})


def finish(store: Store, sync_id: int, status: str, counts: Mapping[str, int],
           error: str | None, now: datetime, cursor: tuple[str, datetime] | None = None
           ) -> None:
    """Close a log entry. `cursor` (sync, position): every change before the position is
    delivered, so that changes sync looks from there on — moved in the transaction that
    logs the success, which `rebuilt_from` reads: a kill between the two would have left a
    cursor ahead of the log, and the next sync would have taken the runs in between for a
    rebuilt history. The keys sent stay in `sync_state`: an erasure must find every message
    about a person."""
    entry = exp.update("sync_log", {
        "status": exp.Placeholder(), "finished_at": exp.Placeholder(),
        **{name: exp.Placeholder() for name in COUNTS}, "error": exp.Placeholder()},
        where=exp.column("sync_id").eq(exp.Placeholder()))
    with store.backend.transaction():
        store.backend.execute(entry, [status, now, *(counts.get(n, 0) for n in COUNTS),
                                      error[:2000] if error else None, sync_id])
        if cursor is not None:
            sync, position = cursor
            mine = exp.column("sync").eq(exp.Placeholder())
            store.backend.execute(exp.delete("sync_cursors", where=mine), [sync])
            store.backend.execute(exp.insert(exp.values([tuple(
                exp.Placeholder() for _ in range(3))]), "sync_cursors",
                columns=["sync", "cursor_at", "updated_at"]), [sync, position, now])


def log(store: Store, sync: str | None = None, limit: int = 20) -> list[LogEntry]:
    query = exp.select(*LogEntry.__dataclass_fields__).from_("sync_log").order_by(
        exp.Ordered(this=exp.column("sync_id"), desc=True)).limit(limit)
    if sync is not None:
        query = query.where(exp.column("sync").eq(_literal(sync)))
    return [LogEntry(*row) for row in store.backend.fetch(query)]


def forget(store: Store, sync: str, keys: Sequence[str]) -> None:
    """Remove records from what a sync believes its destination holds, and their dead
    letters (erasure)."""
    with store.backend.transaction():
        for table in ("sync_state", "dead_letters"):
            _delete_keys(store, table, sync, keys)


@dataclass(frozen=True)
class Held:
    """A record a sync delivered about an entity, or tried to (a dead letter)."""

    sync: str
    entity_id: str
    record_key: str
    payload: dict[str, Any] | None


def held_by_entities(store: Store, entity_ids: Sequence[str]) -> list[Held]:
    """What every sync the store knows — in the rulebook or not — holds or tried to deliver
    about the entities, by sync, entity and key."""
    found: dict[tuple[str, str, str], dict[str, Any] | None] = {}
    for chunk in _chunks(entity_ids):
        parts = [exp.select("sync", "entity_id", "record_key", "payload").from_(table)
                 .where(_among("entity_id", chunk))
                 for table in ("sync_state", "dead_letters")]
        for sync, entity, key, payload in store.backend.fetch(
                exp.union(*parts, distinct=False), [*chunk, *chunk]):
            place = (str(sync), str(entity), str(key))
            # A key in both tables (sent, then dead-lettered): either payload will do.
            found[place] = found.get(place) or (json.loads(payload) if payload else None)
    return [Held(*place, found[place]) for place in sorted(found)]
