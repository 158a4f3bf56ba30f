"""Helpers of the fault tests: a hook between batches (where a test breaks the real server),
what a destination should hold, and a record of every fault case run."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retainer.destinations import open_destination
from retainer.destinations.base import Destination, Record
from retainer.project import Project
from retainer.rulebook.loader import Rulebook
from retainer.sync import state
from retainer.sync.apply import SyncResult
from retainer.sync.records import current_records, published
from retainer.sync.runner import run_syncs


@dataclass(frozen=True)
class FaultCase:
    destination: str
    fault: str
    failed_first: bool      # the faulty sync reported a failure (or recovered by itself)
    exact_after: bool       # the destination held exactly the expected state afterwards
    duplicates: int = 0     # raw duplicate deliveries (messages) observed
    killed: bool = False    # the faulty sync was a process killed with SIGKILL


CASES: list[FaultCase] = []


class Hooked(Destination):
    """The real destination, with `before(n)` called before its n-th delivery (0-based):
    the moment a test stops the server, kills a connection or takes a lock."""

    def __init__(self, inner: Destination, before: Callable[[int], None]) -> None:
        super().__init__(inner.name)
        self.inner = inner
        self.kind = inner.kind
        self.batch_size = inner.batch_size
        self.supports_delete = inner.supports_delete
        self.before = before
        self.calls = 0

    def deliver(self, stream: str, records: Sequence[Record]) -> None:
        self.before(self.calls)
        self.calls += 1
        self.inner.deliver(stream, records)

    def close(self) -> None:
        self.inner.close()


def hooked(before: Callable[[int], None]) -> Callable[[str, Rulebook], Destination]:
    def opener(name: str, rulebook: Rulebook) -> Destination:
        return Hooked(open_destination(name, rulebook), before)
    return opener


def sync_once(root: Path, before: Callable[[int], None] | None = None,
              names: Sequence[str] | None = None) -> list[SyncResult]:
    kwargs: dict[str, Any] = {"opener": hooked(before)} if before else {}
    outcomes = run_syncs(Project(root), names, **kwargs)
    results = [o for o in outcomes if isinstance(o, SyncResult)]
    assert len(results) == len(outcomes)
    return results


def expected(root: Path, name: str) -> dict[str, dict[str, Any]]:
    """key → payload of what sync `name` should leave at its destination."""
    project = Project(root)
    engine = project.results()
    try:
        records = current_records(project.rulebook, name, project.rulebook.syncs[name], engine,
                                  published(engine))
    finally:
        engine.close()
    return {r.key: r.payload for r in records}


def store_settled(root: Path, name: str) -> bool:
    """After recovery the store agrees: it knows every expected record, no dead letters."""
    with Project(root).store() as store:
        known = state.known_state(store, name)
        letters = state.dead_letters(store, name)
    return set(known) == set(expected(root, name)) and not letters

