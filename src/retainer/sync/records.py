"""The records a sync would have the destination hold, or the messages it would send.

`upsert` and `mirror` read the published results: one record per entity (passing `where`),
keyed by the entity's id, its payload the chosen columns. `changes` reads membership history:
one message per segment change, keyed so that a resend is recognisably the same message.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlglot import exp

from retainer.compile.sql import category
from retainer.destinations.base import Record
from retainer.engines.duckdb import DuckDBEngine
from retainer.errors import RetainerError
from retainer.rulebook.destination_models import Sync
from retainer.rulebook.expressions import ExpressionError, Type
from retainer.rulebook.loader import Rulebook
from retainer.state import Store
from retainer.sync.columns import (
    compile_where,
    default_columns,
    dimension_names,
    key_columns,
    results_table,
)


@dataclass(frozen=True)
class Published:
    """The run whose results are published in the output database."""

    run_id: int | None
    as_of: datetime
    rulebook_hash: str | None


def published(results: DuckDBEngine) -> Published:
    try:
        rows = dict(results.query("SELECT key, value FROM run_info"))
    except RetainerError:
        rows = {}
    if "as_of" not in rows:
        raise RetainerError("no published results to sync", hint="run 'retainer run' first")
    run_id = json.loads(rows["run_id"]) if "run_id" in rows else None
    digest = json.loads(rows["rulebook_hash"]) if "rulebook_hash" in rows else None
    return Published(int(run_id) if run_id is not None else None,
                     datetime.fromisoformat(json.loads(rows["as_of"])), digest)


def row_hash(destination: str, stream: str, payload: Mapping[str, Any]) -> str:
    """Equal only for the same payload sent to the same place: moving a sync to another
    destination or table sends everything again."""
    text = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(f"{destination}\0{stream}\0{text}".encode()).hexdigest()[:32]


def jsonable(value: Any) -> Any:
    """A result value as JSON can carry it (times as ISO text, no NaN)."""
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ") if value.tzinfo is None else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    return value


# --- results -------------------------------------------------------------------------------

def result_types(results: DuckDBEngine, table: str) -> dict[str, Type]:
    rows = results.query("SELECT column_name, data_type FROM information_schema.columns "
                         "WHERE table_name = ? ORDER BY ordinal_position", [table])
    return {str(name): category(str(kind)) for name, kind in rows}


def sync_columns(rulebook: Rulebook, sync: Sync, available: Sequence[str]) -> list[str]:
    """The key columns, then the sync's `columns` (or the default ones), each once."""
    keys = key_columns(rulebook, sync.entity)
    chosen = list(sync.columns) or default_columns(rulebook, sync.entity, available)
    return list(dict.fromkeys([*keys, *chosen]))


def current_records(rulebook: Rulebook, name: str, sync: Sync, results: DuckDBEngine,
                    run: Published) -> list[Record]:
    """One record per entity in the published results that passes `where`."""
    table = results_table(sync.entity)
    types = result_types(results, table)
    origin = rulebook.origins.get(("syncs", name))
    if not types:
        raise RetainerError(f"sync '{name}': the published results have no {table}",
                            location=origin.location if origin else None,
                            hint="the rulebook publishes contact results only when it has a "
                                 "contacts source and contact traits, segments or tags")
    columns = sync_columns(rulebook, sync, list(types))
    missing = [c for c in columns if c not in types]
    if missing:
        raise RetainerError(
            f"sync '{name}': column '{missing[0]}' is not in the published {table} "
            f"(run {run.run_id})", location=origin.location if origin else None,
            hint="run 'retainer run' to publish results of the current rulebook")
    try:
        condition = compile_where(sync, types)
    except ExpressionError as exc:
        where = origin.inside(("where",), exc.offset) if origin else None
        raise RetainerError(f"sync '{name}': {exc.message}", location=where,
                            hint=exc.hint) from None
    key = columns[0]
    query = exp.select(*(exp.column(c, quoted=True) for c in columns)).from_(table)
    if condition is not None:
        query = query.where(condition)
    query = query.order_by(exp.column(key, quoted=True))
    records = []
    for row in results.query(query):
        payload = {c: jsonable(v) for c, v in zip(columns, row, strict=True)}
        entity = str(row[0])
        records.append(Record(entity, entity, payload))
    return records


# --- changes -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Change:
    entity_id: str
    dimension: str           # as stored: a dimension's name, or tag:<name>
    at: datetime
    run_id: int | None
    before: str | None
    after: str | None
    reason: Any

    @property
    def key(self) -> str:
        return (f"{self.entity_id}:{self.dimension}:{self.at.isoformat(timespec='seconds')}:"
                f"{self.before or ''}>{self.after or ''}")

    def record(self, level: str, key_column: str) -> Record:
        """The message: `key_column` (e.g. account_id) names the entity, as in the rows of
        upsert and mirror syncs."""
        tag = self.dimension.startswith("tag:")
        before: Any = self.before is not None if tag else self.before
        after: Any = self.after is not None if tag else self.after
        change = "moved" if self.before and self.after else (
            "entered" if self.after else "exited")
        payload = {key_column: self.entity_id, "level": level,
                   "dimension": self.dimension.removeprefix("tag:"),
                   "kind": "tag" if tag else "segment", "change": change,
                   "from": before, "to": after, "as_of": jsonable(self.at),
                   "run_id": self.run_id, "reason": self.reason}
        return Record(self.key, self.entity_id, payload)


def changes_since(store: Store, rulebook: Rulebook, sync: Sync, start: datetime | None
                  ) -> list[Change]:
    """Every change in history at or after `start` (all of history when None), of the
    dimensions and tags the sync follows, oldest first."""
    names = dimension_names(rulebook, sync.entity)
    if sync.columns:
        names = {c: names[c] for c in sync.columns if c in names}
    stored = [exp.Literal.string(n) for n in names.values()]
    if not stored:
        return []
    moment = start or datetime(1, 1, 1)
    found: dict[tuple[str, str, datetime], dict[str, Any]] = {}
    for side, at, run in (("after", "entered_at", "entered_run"),
                          ("before", "exited_at", "exited_run")):
        query = (exp.select("entity_id", "dimension", "segment", at, run, "reason")
                 .from_("memberships")
                 .where(exp.column("level").eq(exp.Literal.string(sync.entity)))
                 .where(exp.column("dimension").isin(*(s.copy() for s in stored)))
                 .where(exp.GTE(this=exp.column(at), expression=exp.Placeholder())))
        for entity, dimension, segment, when, run_id, reason in store.backend.fetch(
                query, [moment]):
            item = found.setdefault((str(entity), str(dimension), when), {})
            item[side] = str(segment)
            item.setdefault("run_id", run_id)
            if side == "after":
                item["reason"] = json.loads(reason) if reason else None
    changes = [Change(entity, dimension, when, item.get("run_id"), item.get("before"),
                      item.get("after"), item.get("reason"))
               for (entity, dimension, when), item in found.items()]
    return sorted(changes, key=lambda c: (c.at, c.entity_id, c.dimension))
