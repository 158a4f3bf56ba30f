"""Reading and writing the action ledger and the acts table of the state store.

Rows are inserted only when their key is new (the key is the primary key, and the insert
skips keys already there), so writing a plan twice writes it once. Statuses change in
one statement per dispatch batch, inside a transaction with the decisions behind them.
Rows still pending when their playbook leaves the rulebook are retired: nothing would ever
dispatch them, and they must not read as work still to do.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlglot import exp

from retainer import journal
from retainer.playbooks.plan import Item
from retainer.state import Store

PENDING = ("planned", "failed")   # dispatched (again) by every act
RETIRED = "retired"               # was pending when its playbook left the rulebook: final
STATUSES = ("planned", "sent", "recorded", "suppressed", "failed", "rejected", "held_out",
            "stopped", "capped", "no_recipient", RETIRED)
# What an act decided to do for an occurrence and whatever dispatch made of it: sent,
# recorded, suppressed by the consent gate, failed or rejected by the destination.
_ACTED_ON = ("planned", "sent", "recorded", "suppressed", "failed", "rejected")
# Uplift's treated arm, by intention to treat. `retired` is in: it counted as treated while
# it was pending, and only this arm has rows that can be retired, so leaving them out would
# thin it alone. `held_out` is the other arm; `stopped`, `capped` and `no_recipient` were
# not acted on.
TREATED = (*_ACTED_ON, RETIRED)
# What a cooldown counts: anything decided for an occurrence, a holdout included, so the
# held-out arm waits out the cooldown like the treated one. `retired` is out: it was never
# dispatched. `stopped`, `capped` and `no_recipient` were not acted on.
FIRED = (*_ACTED_ON, "held_out")
STATUS_OF = {"fire": "planned", "held_out": "held_out", "stopped": "stopped",
             "capped": "capped", "no_recipient": "no_recipient"}

COLUMNS: tuple[tuple[str, str], ...] = (
    ("action_key", "string"), ("act_id", "int64"), ("playbook", "string"),
    ("level", "string"), ("entity_id", "string"), ("account_id", "string"),
    ("contact_id", "string"), ("trigger_kind", "string"), ("segment", "string"),
    ("occurrence", "timestamp"), ("action_index", "int32"), ("action_kind", "string"),
    ("destination", "string"), ("stream", "string"), ("purpose", "string"),
    ("channel", "string"), ("status", "string"), ("holdout", "bool"), ("reason", "string"),
    ("payload", "string"), ("as_of", "timestamp"), ("planned_at", "timestamp"),
    ("due_at", "timestamp"), ("sent_at", "timestamp"), ("attempts", "int32"),
    ("error", "string"), ("rulebook_hash", "string"))


@dataclass(frozen=True)
class Entry:
    """A ledger row, as dispatch and queries read it."""

    action_key: str
    act_id: int
    playbook: str
    entity_id: str
    account_id: str | None
    contact_id: str | None
    trigger_kind: str
    occurrence: datetime
    action_kind: str
    destination: str | None
    stream: str | None
    purpose: str
    channel: str | None
    status: str
    reason: str | None
    payload: dict[str, Any]
    as_of: datetime
    planned_at: datetime
    sent_at: datetime | None
    attempts: int
    error: str | None


ENTRY_COLUMNS = ("action_key", "act_id", "playbook", "entity_id", "account_id", "contact_id",
                 "trigger_kind", "occurrence", "action_kind", "destination", "stream",
                 "purpose", "channel", "status", "reason", "payload", "as_of", "planned_at",
                 "sent_at", "attempts", "error")


def _entry(row: Sequence[Any]) -> Entry:
    values = dict(zip(ENTRY_COLUMNS, row, strict=True))
    values["payload"] = json.loads(values["payload"]) if values["payload"] else {}
    values["attempts"] = int(values["attempts"] or 0)
    return Entry(**values)


def done_occurrences(store: Store, playbook: str, since: datetime
                     ) -> set[tuple[str, str, str, datetime]]:
    """(playbook, entity, trigger kind, occurrence) of a playbook's occurrences from `since`
    on that are in the ledger already."""
    rows = store.backend.fetch(
        "SELECT DISTINCT playbook, entity_id, trigger_kind, occurrence FROM ledger "
        "WHERE playbook = ? AND occurrence >= ?", [playbook, since])
    return {(str(a), str(b), str(c), d) for a, b, c, d in rows}


@dataclass(frozen=True)
class Acted:
    """A ledger row acted on under a history since rewound: its occurrence may have moved."""

    entity_id: str
    occurrence: datetime
    action_index: int
    action_key: str


def acted_before_rebuild(store: Store, playbook: str, trigger_kind: str, segment: str,
                         since: datetime | None) -> dict[str, list[Acted]]:
    """Per entity, the rows of a playbook's trigger (kind and segment) with an occurrence
    after `since` (all when None) written by acts on runs no longer in history — a
    `backfill --replace` superseded them (or a run at an earlier as_of, which history never
    held). Only such rows can hold an occurrence the current history puts elsewhere."""
    ledger, acts, runs = (exp.to_table(n).as_(a) for n, a in (
        ("ledger", "l"), ("acts", "a"), ("runs", "r")))
    query = (exp.select(*(exp.column(c, "l") for c in ("entity_id", "occurrence",
                                                        "action_index", "action_key",
                                                        "payload")))
             .from_(ledger)
             .join(acts, on=exp.column("act_id", "a").eq(exp.column("act_id", "l")))
             .join(runs, on=exp.column("run_id", "r").eq(exp.column("run_id", "a")),
                   join_type="left")
             .where(exp.column("playbook", "l").eq(exp.Placeholder()))
             .where(exp.column("trigger_kind", "l").eq(exp.Placeholder()))
             .where(exp.column("segment", "l").eq(exp.Placeholder()))
             .where(exp.func("coalesce", exp.column("in_history", "r"),
                             exp.false()).not_())
             .order_by(*(exp.column(c, "l") for c in ("entity_id", "occurrence",
                                                      "action_index", "action_key"))))
    parameters: list[Any] = [playbook, trigger_kind, segment]
    if since is not None:
        query = query.where(exp.GT(this=exp.column("occurrence", "l"),
                                   expression=exp.Placeholder()))
        parameters.append(since)
    found: dict[str, list[Acted]] = {}
    for entity, occurrence, index, key, payload in store.backend.fetch(query, parameters):
        # A row an earlier rebuild stopped names the action that really acted: that one.
        acted_as = json.loads(payload).get("acted_as") if payload else None
        found.setdefault(str(entity), []).append(Acted(str(entity), occurrence, int(index),
                                                       str(acted_as or key)))
    return found


def begin_act(store: Store, as_of: datetime, run_id: int | None, started_at: datetime,
              playbooks: Sequence[str], rulebook_hash: str) -> int:
    """Open the act's row; `retire`, given the act, counts what it retires."""
    return journal.begin(store, "acts", "act_id", {
        "as_of": as_of, "run_id": run_id, "started_at": started_at,
        "playbooks": ",".join(playbooks), "rulebook_hash": rulebook_hash, "retired": 0})


# The counts an act records, in the order `retainer acts` shows them.
ACT_COUNTS = ("planned", "sent", "recorded", "suppressed", "failed", "held_out", "stopped",
              "deferred", "retired")


def acts(store: Store, limit: int) -> list[dict[str, Any]]:
    """The latest acts, newest first: when, against which run, how they ended, and their
    counts."""
    columns = ["act_id", "as_of", "run_id", "started_at", "finished_at", "status",
               *ACT_COUNTS, "error"]
    query = (exp.select(*columns).from_("acts")
             .order_by(exp.Ordered(this=exp.column("act_id"), desc=True)).limit(limit))
    return [dict(zip(columns, row, strict=True)) for row in store.backend.fetch(query)]


def finish_act(store: Store, act_id: int, status: str, counts: Mapping[str, int],
               finished_at: datetime, error: str | None = None) -> None:
    store.backend.execute(
        "UPDATE acts SET status = ?, finished_at = ?, error = ?, " +
        ", ".join(f"{n} = ?" for n in ACT_COUNTS) + " WHERE act_id = ?",
        [status, finished_at, error, *(counts.get(n, 0) for n in ACT_COUNTS), act_id])


def insert(store: Store, items: Sequence[Item], act_id: int, as_of: datetime,
           planned_at: datetime, rulebook_hash: str) -> int:
    """Write the items as ledger rows; keys already present are left alone. Returns how
    many rows were new."""
    if not items:
        return 0
    import pyarrow as pa

    rows = [{
        "action_key": i.key, "act_id": act_id, "playbook": i.playbook, "level": i.level,
        "entity_id": i.entity_id, "account_id": i.account_id, "contact_id": i.contact_id,
        "trigger_kind": i.trigger_kind, "segment": i.segment, "occurrence": i.occurrence,
        "action_index": i.action_index, "action_kind": i.action_kind,
        "destination": i.destination, "stream": i.stream, "purpose": i.purpose,
        "channel": i.channel, "status": STATUS_OF[i.outcome], "holdout": i.holdout,
        "reason": i.why if i.why_not is None else f"{i.why_not} ({i.why})",
        "payload": json.dumps(i.payload, sort_keys=True, default=str), "as_of": as_of,
        "planned_at": planned_at, "due_at": i.due_at, "sent_at": None, "attempts": 0,
        "error": None, "rulebook_hash": rulebook_hash} for i in items]
    schema = pa.schema([(name, _arrow_type(kind)) for name, kind in COLUMNS])
    table = pa.Table.from_pylist(rows, schema=schema)
    names = ", ".join(name for name, _ in COLUMNS)
    before = _count(store)
    store.backend.load("incoming_ledger", table)
    store.backend.execute(
        f"INSERT INTO ledger ({names}) SELECT {', '.join('i.' + n for n, _ in COLUMNS)} "
        "FROM incoming_ledger i WHERE NOT EXISTS "
        "(SELECT 1 FROM ledger l WHERE l.action_key = i.action_key)")
    store.backend.execute("DROP TABLE IF EXISTS incoming_ledger")
    return _count(store) - before


def _count(store: Store) -> int:
    return int(store.backend.fetch("SELECT count(*) FROM ledger")[0][0])


def _arrow_type(kind: str) -> Any:
    import pyarrow as pa
    return {"string": pa.string(), "int64": pa.int64(), "int32": pa.int32(),
            "bool": pa.bool_(), "timestamp": pa.timestamp("us")}[kind]


def pending(store: Store, max_attempts: int, playbooks: Sequence[str] | None = None
            ) -> list[Entry]:
    """Rows waiting for dispatch: planned, or failed fewer than `max_attempts` times."""
    query = (f"SELECT {', '.join(ENTRY_COLUMNS)} FROM ledger WHERE (status = 'planned' OR "
             "(status = 'failed' AND attempts < ?))")
    parameters: list[Any] = [max_attempts]
    if playbooks is not None:
        if not playbooks:
            return []
        query += f" AND playbook IN ({', '.join('?' for _ in playbooks)})"
        parameters += list(playbooks)
    rows = store.backend.fetch(query + " ORDER BY planned_at, action_key", parameters)
    return [_entry(r) for r in rows]


def entries(store: Store, equal: Mapping[str, Any] | None = None,
            since: datetime | None = None, limit: int | None = None) -> list[Entry]:
    """Ledger rows, newest first: those whose columns have the `equal` values, planned at
    or after `since`."""
    query = exp.select(*ENTRY_COLUMNS).from_("ledger")
    parameters: list[Any] = []
    for column, value in (equal or {}).items():
        query = query.where(exp.column(column).eq(exp.Placeholder()))
        parameters.append(value)
    if since is not None:
        query = query.where(exp.GTE(this=exp.column("planned_at"),
                                    expression=exp.Placeholder()))
        parameters.append(since)
    query = query.order_by(exp.Ordered(this=exp.column("planned_at"), desc=True), "playbook",
                           "entity_id", "action_key")
    if limit is not None:
        query = query.limit(limit)
    return [_entry(r) for r in store.backend.fetch(query, parameters)]


def set_status(store: Store, updates: Sequence[tuple[str, str, datetime | None, int,
                                                     str | None]]) -> None:
    """(action_key, status, sent_at, attempts, error) for each row dispatched."""
    if not updates:
        return
    import pyarrow as pa
    table = pa.table({
        "action_key": pa.array([u[0] for u in updates], pa.string()),
        "status": pa.array([u[1] for u in updates], pa.string()),
        "sent_at": pa.array([u[2] for u in updates], pa.timestamp("us")),
        "attempts": pa.array([u[3] for u in updates], pa.int32()),
        "error": pa.array([u[4] for u in updates], pa.string())})
    store.backend.load("ledger_updates", table)
    store.backend.execute(
        "UPDATE ledger SET status = u.status, sent_at = u.sent_at, attempts = u.attempts, "
        "error = u.error FROM ledger_updates u WHERE ledger.action_key = u.action_key")
    store.backend.execute("DROP TABLE IF EXISTS ledger_updates")


def _pending_status() -> exp.Expr:
    return exp.column("status").isin(*(exp.Literal.string(s) for s in PENDING))


def orphaned(store: Store, playbooks: Collection[str]) -> dict[str, int]:
    """Pending rows of playbooks other than `playbooks` (those in the rulebook), counted
    per playbook: no act would dispatch them any more."""
    query = (exp.select("playbook", exp.Count(this=exp.Star())).from_("ledger")
             .where(_pending_status()).group_by("playbook").order_by("playbook"))
    if playbooks:
        query = query.where(exp.column("playbook").isin(
            *(exp.Placeholder() for _ in playbooks)).not_())
    return {str(name): int(count) for name, count in
            store.backend.fetch(query, list(playbooks))}


def retired_reason(playbook: str) -> str:
    return f"playbook '{playbook}' is no longer in the rulebook"


def retire(store: Store, playbooks: Collection[str], act_id: int) -> dict[str, int]:
    """Mark the pending rows of playbooks no longer in the rulebook (not among `playbooks`)
    `retired`, in one transaction; the reason names the playbook and keeps what the row
    was planned for. The act `act_id` counts them in the same transaction, so even a kill
    cannot leave retired rows that no act counts. Returns how many rows of each playbook
    were retired."""
    found = orphaned(store, playbooks)
    reason = exp.column("reason")
    # The reason a row was planned for stays, after the reason it was retired.
    retired_why = exp.Case(ifs=[exp.If(this=reason.is_(exp.null()), true=exp.Placeholder())],
                           default=_concat(exp.Placeholder(), exp.Literal.string(" ("),
                                           reason, exp.Literal.string(")")))
    with store.backend.transaction():
        for name in found:
            update = exp.update("ledger", {"status": exp.Literal.string(RETIRED),
                                           "reason": retired_why.copy()},
                                where=exp.and_(exp.column("playbook").eq(exp.Placeholder()),
                                               _pending_status()))
            store.backend.execute(update, [retired_reason(name), retired_reason(name), name])
        if found:
            store.backend.execute(exp.update(
                "acts", {"retired": exp.Placeholder()},
                where=exp.column("act_id").eq(exp.Placeholder())), [sum(found.values()), act_id])
    return found


def _concat(*parts: exp.Expr) -> exp.Expr:
    return functools.reduce(lambda left, right: exp.DPipe(this=left, expression=right), parts)
