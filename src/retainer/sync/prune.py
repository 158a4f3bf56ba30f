"""State the store keeps for syncs that are no longer in the rulebook, and pruning it.

A sync removed from the rulebook leaves what it knew behind: the records its destination
holds (`sync_state`), its cursor (`sync_cursors`) and its dead letters. Nothing reads them
any more, but a sync may only be commented out for a day — put back, it sends exactly what
changed — so they are reported, and deleted only when someone asks (`retainer sync
--prune`). The sync log is history and stays.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlglot import exp

from retainer.errors import RetainerError, did_you_mean
from retainer.state import Store

# What a sync keeps between runs, and pruning deletes.
TABLES = ("sync_state", "dead_letters", "sync_cursors")


@dataclass(frozen=True)
class StaleSync:
    """A sync the store knows and the rulebook does not."""

    sync: str
    records: int          # what it believes its destination holds
    dead_letters: int
    cursor: bool          # a changes sync's position in the history

    def describe(self) -> str:
        cursor = ", its cursor" if self.cursor else ""
        return (f"{self.records:,} record(s), {self.dead_letters:,} dead letter(s)"
                f"{cursor}")


def _not_declared(declared: Collection[str]) -> exp.Expr | None:
    if not declared:
        return None
    return exp.column("sync").isin(*(exp.Placeholder() for _ in declared)).not_()


def stale(store: Store, declared: Collection[str]) -> list[StaleSync]:
    """The syncs with state in the store that are not among `declared`, by name."""
    found: dict[str, dict[str, int]] = {}
    where = _not_declared(declared)
    for table in TABLES:
        query = (exp.select("sync", exp.Count(this=exp.Star())).from_(table)
                 .group_by("sync"))
        if where is not None:
            query = query.where(where.copy())
        for name, count in store.backend.fetch(query, list(declared)):
            found.setdefault(str(name), dict.fromkeys(TABLES, 0))[table] = int(count)
    return [StaleSync(name, counts["sync_state"], counts["dead_letters"],
                      bool(counts["sync_cursors"])) for name, counts in sorted(found.items())]


def chosen(store: Store, declared: Collection[str], names: Collection[str] = ()
           ) -> list[StaleSync]:
    """The stale syncs `names` (default: all of them); a name that is in the rulebook, or
    that the store knows nothing of, is an error — pruning never guesses."""
    found = stale(store, declared)
    if not names:
        return found
    by_name = {s.sync: s for s in found}
    for name in names:
        if name in declared:
            raise RetainerError(f"sync '{name}' is in the rulebook: its state is in use",
                                hint="--prune deletes only the state of syncs removed from "
                                     "the rulebook")
        if name not in by_name:
            raise RetainerError(f"the store holds no state of a sync named '{name}'",
                                hint=did_you_mean(name, by_name) or (
                                    "stale syncs: " + ", ".join(by_name) if by_name
                                    else "every sync in the store is in the rulebook"))
    return [by_name[name] for name in sorted(set(names))]


def prune(store: Store, declared: Collection[str], names: Collection[str] = ()
          ) -> list[StaleSync]:
    """Delete the state of the stale syncs `names` (default: every stale sync), in one
    transaction; returns what was deleted."""
    with store.backend.transaction():
        doomed = chosen(store, declared, names)
        if doomed:
            placeholders = [exp.Placeholder() for _ in doomed]
            for table in TABLES:
                store.backend.execute(
                    exp.delete(table, where=exp.column("sync").isin(
                        *(p.copy() for p in placeholders))), [s.sync for s in doomed])
    return doomed
