"""Journals of the commands that act outside Retainer (`acts`, `sync_log`): one row per
command, `running` until it finishes. The store's lock lets one such command in at a
time, so a row still `running` when the next one starts belongs to a process that was
killed: it is marked `interrupted`."""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from retainer.state import Store


def begin(store: Store, table: str, key: str, values: dict[str, Any]) -> int:
    """Open an entry with the next id and `values` (killed entries are closed first)."""
    running = exp.column("status").eq(exp.Literal.string("running"))
    with store.backend.transaction():
        store.backend.execute(exp.update(table, {"status": exp.Literal.string("interrupted")},
                                         where=running))
        last = exp.func("coalesce", exp.Max(this=exp.column(key)), exp.Literal.number(0))
        entry = int(store.backend.fetch(exp.select(last + 1).from_(table))[0][0])
        row = {key: entry, **values, "status": "running"}
        store.backend.execute(exp.insert(exp.values([tuple(exp.Placeholder() for _ in row)]),
                                         table, columns=list(row)), list(row.values()))
    return entry
