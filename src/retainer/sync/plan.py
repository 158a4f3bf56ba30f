"""Plan a sync: what the destination should receive now, compared with what it holds.

A plan is data: `retainer sync --dry-run` prints it, tests inspect it, and applying it is
delivering its records batch by batch. Only what changed since the last successful sync is
in it — records whose payload differs from the one `sync_state` says the destination holds,
deletions of records it holds that are no longer wanted (`mirror`), and changes not yet
sent (`changes`: after the cursor, and from where history was rebuilt if that was before
it) — plus whatever failed before, since failures never reach `sync_state`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from retainer.destinations.base import Record
from retainer.engines.duckdb import DuckDBEngine
from retainer.rulebook.destination_models import Sync
from retainer.rulebook.loader import Rulebook
from retainer.state import Store
from retainer.sync import state
from retainer.sync.columns import key_columns
from retainer.sync.records import Published, changes_since, current_records, row_hash


@dataclass(frozen=True)
class SyncPlan:
    name: str
    sync: Sync
    destination: str
    kind: str                     # the destination's type
    stream: str                   # table, file, routing key
    run: Published
    upserts: tuple[Record, ...] = ()
    deletes: tuple[Record, ...] = ()
    messages: tuple[Record, ...] = ()
    unchanged: int = 0
    # key → attempts so far of every record of the sync in the dead-letter store
    dead_letters: Mapping[str, int] = field(default_factory=dict)
    hashes: Mapping[str, str] = field(default_factory=dict)
    changed_at: Mapping[str, datetime] = field(default_factory=dict)
    previous: Mapping[str, dict[str, Any] | None] = field(default_factory=dict)
    cursor_to: datetime | None = None   # changes: where the cursor goes once all is sent
    full: bool = False
    # changes: history was rebuilt from here after the last sync, before its cursor
    rebuilt_from: datetime | None = None

    @property
    def records(self) -> tuple[Record, ...]:
        """In delivery order: deletions, then upserts; messages oldest first."""
        return (*self.deletes, *self.upserts, *self.messages)

    @property
    def retrying(self) -> int:
        """Records that failed before and are sent again."""
        return sum(1 for r in self.records if r.key in self.dead_letters)

    @property
    def note(self) -> str | None:
        """What deserves a word before the counts: a rebuilt history's changes resent."""
        if self.rebuilt_from is None:
            return None
        return (f"history was rebuilt from {_moment(self.rebuilt_from)}: resending the "
                "changes from there that were not sent before")

    def differences(self, record: Record) -> list[tuple[str, Any, Any]]:
        """(field, before, after) for each field an upsert changes (all, for a new one)."""
        before = self.previous.get(record.key) or {}
        return [(k, before.get(k), v) for k, v in record.payload.items()
                if k not in before or before[k] != v]


def stream_of(name: str, sync: Sync) -> str:
    return sync.table or name


def plan_sync(rulebook: Rulebook, store: Store, results: DuckDBEngine, run: Published,
              name: str, *, full: bool = False, explain: bool = False) -> SyncPlan:
    """What sync `name` must deliver now. `full` sends every record again, as if the
    destination held nothing (a mirror still deletes what the results no longer have; a
    `changes` sync sends all of history). `explain` also reads what was sent before, so
    `differences` can say what changed."""
    sync = rulebook.syncs[name]
    settings = rulebook.destinations.get(sync.to)
    kind = settings.type if settings is not None else "?"
    stream = stream_of(name, sync)
    base = SyncPlan(name, sync, sync.to, kind, stream, run, full=full,
                    dead_letters=state.dead_letter_attempts(store, name))
    if sync.mode == "changes":
        return _plan_changes(rulebook, store, base)
    # `full` sends every record again, but a mirror still deletes what the destination
    # holds and the results no longer have.
    known = state.known_state(store, name, payloads=explain)
    wanted = current_records(rulebook, name, sync, results, run)
    hashes = {r.key: row_hash(sync.to, stream, r.payload) for r in wanted}
    upserts = tuple(r for r in wanted if full or known.get(r.key) is None
                    or known[r.key].row_hash != hashes[r.key])
    deletes: tuple[Record, ...] = ()
    if sync.mode == "mirror":
        present = {r.key for r in wanted}
        deletes = tuple(Record(key, item.entity_id, op="delete")
                        for key, item in sorted(known.items()) if key not in present)
    pending = {r.key for r in (*upserts, *deletes)}
    return SyncPlan(name, sync, sync.to, kind, stream, run, upserts, deletes,
                    unchanged=len(wanted) - len(upserts), dead_letters=base.dead_letters,
                    hashes=hashes, previous={k: v.payload for k, v in known.items()
                                             if k in pending}, full=full)


def _moment(value: datetime) -> str:
    return f"{value:%Y-%m-%d}" if value.time() == datetime.min.time() else \
        f"{value:%Y-%m-%d %H:%M}"


def _plan_changes(rulebook: Rulebook, store: Store, base: SyncPlan) -> SyncPlan:
    latest = store.latest_as_of()
    cursor = None if base.full else state.cursor(store, base.name)
    # A new changes sync starts with the latest run's changes, not all of history.
    start = None if base.full else cursor or latest
    if latest is None:
        return base
    # History rebuilt from before the cursor may hold changes there that were never sent:
    # the sync looks again from where it was rebuilt. A change it did send has the same
    # key in the rebuilt history, so `known` keeps it from going out twice.
    rebuilt = state.rebuilt_from(store, base.name, cursor) if cursor is not None else None
    if rebuilt is not None:
        start = rebuilt
    known = {} if base.full else state.known_state(store, base.name, since=start,
                                                   payloads=False)
    changes = changes_since(store, rulebook, base.sync, start)
    key_column = key_columns(rulebook, base.sync.entity)[0]
    messages = tuple(c.record(base.sync.entity, key_column) for c in changes
                     if c.key not in known)
    return SyncPlan(base.name, base.sync, base.destination, base.kind, base.stream, base.run,
                    messages=messages, unchanged=len(changes) - len(messages),
                    dead_letters=base.dead_letters,
                    hashes={m.key: row_hash(base.destination, base.stream, m.payload)
                            for m in messages},
                    changed_at={c.key: c.at for c in changes},
                    cursor_to=latest, full=base.full, rebuilt_from=rebuilt)
