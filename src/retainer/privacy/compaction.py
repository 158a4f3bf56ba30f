"""After an erasure, the databases it changed are rewritten so no deleted byte is left.

Deleting a row does not take its bytes out of a database file (see `retainer.state.compact`),
so `retainer forget` rewrites the state store and the published results once the erasure is
done, while it still holds them. A marker file says a rewrite is owed: it is written before
the erasure's first delete and removed only when every database has been rewritten, so an
erasure with `--no-compact`, a failed rewrite or a kill leaves it behind, `retainer
erasures` mentions it, and the next `retainer forget` (or `retainer forget --compact`)
does the rewrite.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from retainer.engines.duckdb import DuckDBEngine
from retainer.errors import Problem, RetainerError
from retainer.project import Project, utc_now
from retainer.state import Store
from retainer.state.compact import Rewritten, compact_store, rewrite_duckdb

PENDING = ".retainer/compaction.pending"


@dataclass(frozen=True)
class Compaction:
    """What was rewritten, and the problem that stopped the rest (the marker then stays)."""

    rewritten: tuple[Rewritten, ...]
    problem: Problem | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def marker(project: Project) -> Path:
    return project.rulebook.path(PENDING)


def mark_pending(project: Project) -> None:
    """Note that deleted bytes may now be in the databases (keeping the earliest time)."""
    path = marker(project)
    if pending_since(project) is not None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"since": utc_now().isoformat(sep=" ")}), encoding="utf-8")


def pending_since(project: Project) -> datetime | None:
    """Since when a rewrite is owed, or None. A marker left unreadable by a kill while it
    was written still counts (from the time it was written)."""
    path = marker(project)
    if not path.exists():
        return None
    try:
        return datetime.fromisoformat(json.loads(path.read_text(encoding="utf-8"))["since"])
    except (ValueError, KeyError, TypeError):
        return datetime.fromtimestamp(path.stat().st_mtime, UTC).replace(tzinfo=None)


def compact(project: Project, store: Store, engine: DuckDBEngine | None) -> Compaction:
    """Rewrite the store, then the published results. A DuckDB store's connection and the
    engine's are closed by it; callers open them, and close them again harmlessly."""
    done: list[Rewritten] = []
    try:
        done.append(compact_store(store.backend, project.root))
        if engine is not None:
            done.append(rewrite_duckdb(engine.connection, project.output_database,
                                       project.root))
    except RetainerError as exc:
        return Compaction(tuple(done), exc.problem)
    marker(project).unlink(missing_ok=True)
    return Compaction(tuple(done))


def compact_project(project: Project) -> Compaction:
    """`retainer forget --compact`: rewrite without erasing anyone. The results are opened
    first, as a run opens them, so a run in progress makes this fail with "in use"."""
    engine = DuckDBEngine(project.output_database) \
        if project.output_database.exists() else None
    try:
        with project.store() as store:
            return compact(project, store, engine)
    finally:
        if engine is not None:
            engine.close()
