"""Runs, membership history as intervals, health per run — behind one interface.

History is a timeline ordered by `as_of`. A membership is an interval [entered_at, exited_at)
of run times: a run that sees the same segment as before rewrites nothing, so history grows
with changes, not with runs. A run at the latest recorded as_of replaces that run's
observations; a run at an earlier as_of is recorded and published but leaves history alone
(`backfill --replace` rebuilds history from a past date).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlglot import exp

from retainer.errors import RetainerError
from retainer.state.backend import Backend
from retainer.state.schema import CURRENT_VERSION, MIGRATIONS

# What identifies a membership: an entity in one segment of one dimension (or one tag).
MEMBERSHIP_KEY = ("level", "entity_id", "dimension", "segment")


@dataclass(frozen=True)
class RunRecord:
    run_id: int
    kind: str
    as_of: datetime
    started_at: datetime
    finished_at: datetime | None
    status: str
    rulebook_hash: str
    git_commit: str | None
    engine: str
    rows_read: int | None
    rows_rejected: int | None
    duration_s: float | None
    error: str | None
    in_history: bool


@dataclass(frozen=True)
class Interval:
    level: str
    entity_id: str
    dimension: str
    segment: str
    entered_at: datetime
    exited_at: datetime | None
    rulebook_hash: str
    reason: dict[str, Any] | None


class Store:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        try:
            self.migrate()
            # Holding the store means no other run is alive: a 'running' run was killed.
            backend.execute("UPDATE runs SET status = 'interrupted' WHERE status = 'running'")
        except BaseException:
            backend.close()
            raise

    # --- schema --------------------------------------------------------------------------

    def version(self) -> int:
        if not self.backend.has_table("retainer_schema"):
            return 0
        rows = self.backend.fetch("SELECT max(version) FROM retainer_schema")
        return int(rows[0][0] or 0)

    def migrate(self, target: int = CURRENT_VERSION) -> None:
        found = self.version()
        if found > CURRENT_VERSION:
            raise RetainerError(
                f"the state store {self.backend.description} was written by a newer Retainer "
                f"(schema version {found}; this version knows {CURRENT_VERSION})",
                hint="upgrade Retainer; the store has not been changed")
        if found == 0:
            self.backend.execute("CREATE TABLE IF NOT EXISTS retainer_schema "
                                 "(version INTEGER NOT NULL, applied_at TIMESTAMP NOT NULL)")
        for version in range(found + 1, target + 1):
            with self.backend.transaction():
                for statement in MIGRATIONS[version - 1]:
                    self.backend.execute(statement)
                self.backend.execute("INSERT INTO retainer_schema VALUES (?, current_timestamp)",
                                     [version])

    # --- runs ----------------------------------------------------------------------------

    def begin_run(self, kind: str, as_of: datetime, rulebook_hash: str, git_commit: str | None,
                  engine: str, rulebook_files: dict[str, str], started_at: datetime) -> int:
        with self.backend.transaction():
            run_id = int(self.backend.fetch("SELECT coalesce(max(run_id), 0) + 1 FROM runs")
                         [0][0])
            self.backend.execute(
                "INSERT INTO runs (run_id, kind, as_of, started_at, status, rulebook_hash, "
                "git_commit, engine, in_history, rulebook_files) "
                "VALUES (?, ?, ?, ?, 'running', ?, ?, ?, FALSE, ?)",
                [run_id, kind, as_of, started_at, rulebook_hash, git_commit, engine,
                 json.dumps(rulebook_files)])
        return run_id

    def fail_run(self, run_id: int, error: str, finished_at: datetime) -> None:
        # Only a run still running can fail: one already recorded stays what it is.
        self.backend.execute("UPDATE runs SET status = 'failed', error = ?, finished_at = ? "
                             "WHERE run_id = ? AND status = 'running'",
                             [error[:2000], finished_at, run_id])

    def latest_as_of(self) -> datetime | None:
        rows = self.backend.fetch("SELECT max(as_of) FROM runs WHERE in_history")
        value = rows[0][0]
        return value if isinstance(value, datetime) else None

    def record(self, run_id: int, as_of: datetime, memberships: Any, health: Any,
               components: Sequence[str], quality: Sequence[Sequence[Any]], rulebook_hash: str,
               finished_at: datetime, duration_s: float) -> bool:
        """Store one finished run in a single transaction. Returns whether history moved.

        `memberships` and `health` are Arrow tables, or None when the backend shares the
        engine's connection and the caller has created `incoming_memberships` and
        `incoming_health` there already.
        """
        latest = self.latest_as_of()
        into_history = latest is None or as_of >= latest
        if memberships is not None:
            self.backend.load("incoming_memberships", memberships)
        if health is not None:
            self.backend.load("incoming_health", health)
        with self.backend.transaction():
            if into_history:
                if latest is not None and as_of == latest:
                    self._rewind(as_of, inclusive=True)
                self._apply(run_id, as_of, rulebook_hash)
            self.backend.execute(
                "INSERT INTO health (run_id, entity_id, score, band, components) "
                "SELECT ?, entity_id, score, band, components FROM incoming_health", [run_id])
            for row in quality:
                self.backend.execute("INSERT INTO quality VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                     [run_id, *row])
            read = sum(int(row[1]) for row in quality)
            rejected = sum(int(row[2]) + int(row[3]) + int(row[4]) + int(row[5])
                           for row in quality)
            self.backend.execute(
                "UPDATE runs SET status = 'succeeded', finished_at = ?, duration_s = ?, "
                "rows_read = ?, rows_rejected = ?, in_history = ?, health_components = ? "
                "WHERE run_id = ?", [finished_at, duration_s, read, rejected, into_history,
                                     json.dumps(list(components)), run_id])
        return into_history

    def rewind(self, as_of: datetime) -> int:
        """Drop history from `as_of` on (for a backfill that rebuilds it). Returns runs undone."""
        with self.backend.transaction():
            return self._rewind(as_of, inclusive=True)

    def _rewind(self, as_of: datetime, inclusive: bool) -> int:
        undone = [int(r[0]) for r in self.backend.fetch(
            "SELECT run_id FROM runs WHERE in_history AND as_of >= ?", [as_of])]
        self.backend.execute("DELETE FROM memberships WHERE entered_at >= ?", [as_of])
        self.backend.execute("UPDATE memberships SET exited_at = NULL, exited_run = NULL "
                             "WHERE exited_at >= ?", [as_of])
        self.backend.execute("UPDATE runs SET in_history = FALSE, status = 'superseded' "
                             "WHERE in_history AND as_of >= ?", [as_of])
        self.backend.execute("DELETE FROM health WHERE run_id IN (SELECT run_id FROM runs "
                             "WHERE status = 'superseded')")
        return len(undone)

    def _apply(self, run_id: int, as_of: datetime, rulebook_hash: str) -> None:
        # The open memberships and the run's are compared once, in one join: only what
        # changed is written (closed, or opened with its reason); unchanged memberships are
        # not touched at all. Comparing twice (NOT EXISTS for closing, again for opening)
        # read both sides twice and built every incoming reason for nothing.
        same = " AND ".join(f"c.{k} = memberships.{k}" for k in MEMBERSHIP_KEY)
        self.backend.execute("DROP TABLE IF EXISTS membership_changes")
        self.backend.execute(
            "CREATE TEMP TABLE membership_changes AS SELECT "
            + ", ".join(f"coalesce(i.{k}, m.{k}) AS {k}" for k in MEMBERSHIP_KEY)
            + ", i.level IS NULL AS closes, i.reason FROM incoming_memberships i FULL JOIN "
            "(SELECT level, entity_id, dimension, segment FROM memberships "
            "WHERE exited_at IS NULL) m ON "
            + " AND ".join(f"i.{k} = m.{k}" for k in MEMBERSHIP_KEY)
            + " WHERE i.level IS NULL OR m.level IS NULL")
        self.backend.execute(
            "UPDATE memberships SET exited_at = ?, exited_run = ? FROM membership_changes c "
            f"WHERE c.closes AND memberships.exited_at IS NULL AND {same}", [as_of, run_id])
        self.backend.execute(
            "INSERT INTO memberships (level, entity_id, dimension, segment, entered_at, "
            "exited_at, entered_run, exited_run, rulebook_hash, reason) "
            "SELECT level, entity_id, dimension, segment, ?, NULL, ?, NULL, ?, reason "
            "FROM membership_changes WHERE NOT closes", [as_of, run_id, rulebook_hash])
        self.backend.execute("DROP TABLE membership_changes")

    # --- reading -------------------------------------------------------------------------

    def runs(self, limit: int = 20) -> list[RunRecord]:
        rows = self.backend.fetch(
            exp.select(*RunRecord.__dataclass_fields__).from_("runs")
            .order_by(exp.Ordered(this=exp.column("run_id"), desc=True)).limit(limit))
        return [RunRecord(*row) for row in rows]

    def run(self, run_id: int) -> RunRecord:
        rows = self.backend.fetch(exp.select(*RunRecord.__dataclass_fields__).from_("runs")
                                  .where(exp.column("run_id").eq(exp.Placeholder())), [run_id])
        if not rows:
            raise RetainerError(f"no run {run_id} in the state store",
                                hint="'retainer runs' lists them")
        return RunRecord(*rows[0])

    def rulebook_files(self, run_id: int) -> dict[str, str]:
        self.run(run_id)
        rows = self.backend.fetch("SELECT rulebook_files FROM runs WHERE run_id = ?", [run_id])
        files: dict[str, str] = json.loads(rows[0][0] or "{}")
        return files

    def history(self, entity_id: str, level: str = "account") -> list[Interval]:
        rows = self.backend.fetch(
            "SELECT level, entity_id, dimension, segment, entered_at, exited_at, "
            "rulebook_hash, reason FROM memberships WHERE entity_id = ? AND level = ? "
            "ORDER BY dimension, entered_at", [entity_id, level])
        return [Interval(str(r[0]), str(r[1]), str(r[2]), str(r[3]), r[4], r[5], str(r[6]),
                         json.loads(r[7]) if r[7] else None) for r in rows]

    def health_series(self, entity_id: str) -> list[tuple[datetime, float | None, str | None]]:
        rows = self.backend.fetch(
            "SELECT r.as_of, h.score, h.band FROM health h JOIN runs r ON r.run_id = h.run_id "
            "WHERE h.entity_id = ? AND r.in_history ORDER BY r.as_of", [entity_id])
        return [(row[0], row[1], row[2]) for row in rows]

    def members_at(self, moment: datetime, dimension: str, level: str = "account"
                   ) -> dict[str, str]:
        """Each entity's segment in `dimension` as history knew it at `moment`."""
        rows = self.backend.fetch(
            "SELECT entity_id, segment FROM memberships WHERE dimension = ? AND level = ? "
            "AND entered_at <= ? AND (exited_at IS NULL OR exited_at > ?)",
            [dimension, level, moment, moment])
        return {str(r[0]): str(r[1]) for r in rows}

    def flows(self, start: datetime, end: datetime, dimension: str, level: str = "account"
              ) -> list[tuple[str | None, str | None, int]]:
        """How many entities went from each segment at `start` to each segment at `end`."""
        at_start = self.members_at(start, dimension, level)
        at_end = self.members_at(end, dimension, level)
        counts: dict[tuple[str | None, str | None], int] = {}
        for entity in at_start.keys() | at_end.keys():
            key = (at_start.get(entity), at_end.get(entity))
            counts[key] = counts.get(key, 0) + 1
        return sorted(((a, b, n) for (a, b), n in counts.items()),
                      key=lambda item: (str(item[0]), str(item[1])))

    def transitions(self, run_id: int) -> list[tuple[str, str, str, str]]:
        """(entity, dimension, change, segment) for every entry and exit a run recorded."""
        rows = self.backend.fetch(
            "SELECT entity_id, dimension, 'entered', segment FROM memberships "
            "WHERE entered_run = ? UNION ALL SELECT entity_id, dimension, 'exited', segment "
            "FROM memberships WHERE exited_run = ? ORDER BY 1, 2, 3", [run_id, run_id])
        return [(str(a), str(b), str(c), str(d)) for a, b, c, d in rows]

    def open_memberships(self, dimensions: Sequence[str], before: datetime) -> Any:
        """The memberships of the given dimensions that held just before `before`, as an
        Arrow table (level, entity_id, dimension, segment, entered_at) — what a state
        machine needs. A re-run at the latest as_of sees the stages before that run."""
        names: list[exp.Expr] = [exp.Literal.string(name) for name in dimensions]
        moment = exp.cast(exp.Literal.string(before.isoformat(sep=" ")), "TIMESTAMP")
        query = (exp.select("level", "entity_id", "dimension", "segment", "entered_at")
                 .from_("memberships")
                 .where(exp.LT(this=exp.column("entered_at"), expression=moment))
                 .where(exp.or_(exp.column("exited_at").is_(exp.null()), exp.GTE(
                     this=exp.column("exited_at"), expression=moment.copy())))
                 .where(exp.column("dimension").isin(
                     *(names or [exp.cast(exp.null(), "VARCHAR")]))))
        return self.backend.fetch_arrow(query)

    def size_bytes(self) -> int:
        return self.backend.size_bytes()

    def close(self) -> None:
        self.backend.close()
