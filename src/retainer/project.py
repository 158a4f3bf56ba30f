"""The facade the CLI, the tests and (later) the API drive: load → validate → plan → run."""

from __future__ import annotations

import json
import subprocess
import time as clock
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlglot import exp

from retainer.compile.catalog import Catalog
from retainer.compile.plan import Plan, compile_plan
from retainer.consent.sources import SourceReader
from retainer.engines import create_engine
from retainer.engines.base import Engine, Progress
from retainer.engines.duckdb import STAGED_SUFFIX, DuckDBEngine, staged
from retainer.errors import RetainerError
from retainer.privacy.suppression import suppress_forgotten
from retainer.privacy.tombstones import forgotten_hashes
from retainer.rulebook.loader import Rulebook, load_project
from retainer.state import Store, open_store
from retainer.state.snapshot import health_query, memberships_query

# `.publishing-<run id>`: an empty file, so a kill can never leave it half written. Earlier
# versions wrote the run id into `.publishing` (read still: a kill may have left one).
PUBLISHING_MARKER = ".publishing-"
LEGACY_MARKER = ".publishing"
# The SQL dialect each engine runs (the compiler shapes its trees for that dialect).
DIALECT_OF_ENGINE = {"duckdb": "duckdb", "postgres": "postgres", "spark": "spark"}


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def parse_as_of(value: str | date | datetime | None, option: str = "--as-of") -> datetime:
    """`2026-11-30` → midnight UTC at the start of that day; times with an offset → UTC.

    `option` is how the user wrote the value (`--from`, `as_of:`), for the hint."""
    if value is None:
        return utc_now()
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    else:
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise RetainerError(f"'{value}' is not a date or time",
                                hint=f"write {option} 2026-11-30 or 2026-11-30T12:00:00Z"
                                ) from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


@dataclass(frozen=True)
class QualityRow:
    source: str
    rows_read: int
    missing_id: int
    duplicate_id: int
    unknown_id: int
    bad_time: int
    after_as_of: int
    future_dated: int

    @property
    def rejected(self) -> int:
        return self.missing_id + self.duplicate_id + self.unknown_id + self.bad_time


@dataclass(frozen=True)
class RunReport:
    as_of: datetime
    seconds: float
    accounts: int
    contacts: int
    dimensions: dict[str, list[tuple[str | None, int]]]
    tags: dict[str, int]
    health_bands: list[tuple[str | None, int]]
    quality: list[QualityRow]
    outputs: dict[str, Path] = field(default_factory=dict)
    run_id: int = 0
    in_history: bool = True


@dataclass(frozen=True)
class BackfillReport:
    dates: list[datetime]
    run_ids: list[int]
    seconds: float
    undone: int


def _waiting_run(marker: Path) -> str | None:
    """The run whose exports a publishing marker says wait beside the published files."""
    if marker.name != LEGACY_MARKER:
        return marker.name.removeprefix(PUBLISHING_MARKER)
    try:
        return str(json.loads(marker.read_text(encoding="utf-8"))["run_id"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # written by a run killed as it wrote it: it never published


class Project:
    """A loaded project directory."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).resolve()
        self.rulebook: Rulebook = load_project(self.root)
        self._finish_interrupted_publish()

    @property
    def output_database(self) -> Path:
        return self.rulebook.path(self.rulebook.config.output.database)

    @property
    def export_dir(self) -> Path:
        return self.rulebook.path(self.rulebook.config.output.export_dir)

    def catalog(self) -> Catalog:
        """What the project's engine sees of the sources (for validate, compile, test)."""
        reader = SourceReader(self.rulebook)
        try:
            return reader.catalog()
        finally:
            reader.close()

    def plan(self, as_of: datetime | None = None, catalog: Catalog | None = None,
             dialect: str = "duckdb") -> Plan:
        """Validate the rulebook against the sources and compile it for `dialect`."""
        return compile_plan(self.rulebook, catalog or self.catalog(), as_of or utc_now(),
                            utc_now(), dialect)

    # --- running -------------------------------------------------------------------------

    def run(self, as_of: datetime | None = None, progress: Progress | None = None) -> RunReport:
        """Compute everything, record it in the state store and publish it.

        The store commits first and the outputs after; a failure or a kill at any point
        leaves the previously published outputs and the last good run intact.
        """
        started = clock.perf_counter()
        as_of = as_of or utc_now()
        with self._engine() as engine, self.store(engine) as store, \
                self._compute(engine) as compute:
            run_id = self._begin(store, "run", as_of)
            try:
                catalog = compute.attach_sources(self.rulebook)
                plan, in_history = self._evaluate(engine, compute, store, run_id, as_of,
                                                  catalog, progress, final=True,
                                                  started=started)
                report = summarize(engine, plan, as_of, clock.perf_counter() - started)
            except BaseException as exc:
                store.fail_run(run_id, _describe(exc), utc_now())
                raise
        return replace(report, run_id=run_id, in_history=in_history,
                       outputs={"database": self.output_database, **self._export_paths()})

    def backfill(self, start: datetime, end: datetime, every: timedelta,
                 replace_history: bool = False, progress: Progress | None = None
                 ) -> BackfillReport:
        """Fill history for past dates, reading every source only once."""
        if end < start:
            raise RetainerError(f"backfill --from {start:%Y-%m-%d %H:%M} is after --to "
                                f"{end:%Y-%m-%d %H:%M}", hint="swap them: history is filled "
                                "from the earlier date to the later one")
        if every <= timedelta(0):
            raise RetainerError("backfill --every must be a positive step",
                                hint="write e.g. --every 7d or --every 1d")
        dates = []
        moment = start
        while moment <= end:
            dates.append(moment)
            moment += every
        began = clock.perf_counter()
        run_ids: list[int] = []
        with self._engine() as engine, self.store(engine) as store, \
                self._compute(engine) as compute:
            latest = store.latest_as_of()
            undone = 0
            if latest is not None and latest >= start:
                if not replace_history:
                    raise RetainerError(
                        f"history already holds runs up to {latest:%Y-%m-%d %H:%M}",
                        hint="add --replace to rebuild history from "
                             f"{start:%Y-%m-%d} (later runs are dropped), or start the "
                             "backfill after the latest run")
                undone = store.rewind(start)
            catalog = compute.attach_sources(self.rulebook)
            used = self._compile(catalog, start).sources
            # Text files are parsed once for all dates; Parquet scans in place are faster.
            compute.materialize_sources(self.rulebook, used)
            for index, moment in enumerate(dates):
                run_id = self._begin(store, "backfill", moment)
                try:
                    self._evaluate(engine, compute, store, run_id, moment, catalog, progress,
                                   final=index == len(dates) - 1,
                                   started=clock.perf_counter())
                except BaseException as exc:
                    store.fail_run(run_id, _describe(exc), utc_now())
                    raise
                run_ids.append(run_id)
        return BackfillReport(dates, run_ids, clock.perf_counter() - began, undone)

    def _begin(self, store: Store, kind: str, as_of: datetime) -> int:
        return store.begin_run(kind, as_of, self.rulebook.content_hash, git_commit(self.root),
                               self.rulebook.config.engine, self.rulebook.file_texts(),
                               utc_now())

    def _evaluate(self, engine: DuckDBEngine, compute: Engine, store: Store, run_id: int,
                  as_of: datetime, catalog: Catalog, progress: Progress | None, final: bool,
                  started: float) -> tuple[Plan, bool]:
        """Compute on `compute`; record and publish through the local `engine`."""
        plan = self._compile(catalog, as_of)
        compute.load_previous_state(store.open_memberships(plan.state_machines, as_of))
        compute.execute(plan, progress)
        # A final run stages its outputs in the output file, so publishing is a rename —
        # unless someone has been forgotten: their rows are deleted from the staged outputs
        # below, and deleted rows of a file linger in its free blocks. Then the outputs are
        # staged in memory and copied into the file once they are gone.
        forgotten = forgotten_hashes(store)
        in_file = final and not forgotten
        if compute is engine:
            engine.stage_outputs(plan, temporary=not in_file)
        else:
            compute.stage_outputs(plan)
            engine.receive_staged({step.name: compute.staged_arrow(step.name)
                                   for step in plan.outputs()}, temporary=not in_file)
        # Forgotten people are left out before anything is exported, recorded or published.
        left_out = suppress_forgotten(engine, store, self.rulebook, forgotten,
                                      sources_attached=compute is engine)
        if left_out and compute is not engine and final:
            # It may keep results and a run's work of its own (a backfill's earlier dates
            # still need that work: the last date clears it).
            compute.forget_contacts(left_out, self.rulebook.key_column("contact"))
        exports = self._write_exports(engine, plan) if final else {}
        # History first, outputs after: a kill in between leaves both consistent on their
        # own, and the next run simply records again.
        keys = {"account": self.rulebook.key_column("account"),
                "contact": self.rulebook.key_column("contact")}
        memberships = memberships_query(plan.explain, keys, STAGED_SUFFIX)
        health, components = health_query(plan.explain, keys["account"], STAGED_SUFFIX)
        quality = engine.query(exp.select(exp.Star()).from_(staged("data_quality")))
        if store.backend.shares_engine:
            engine.create_view("incoming_memberships", memberships)
            engine.create_view("incoming_health", health)
            incoming: tuple[Any, Any] = (None, None)
        else:
            incoming = (engine.arrow(memberships), engine.arrow(health))
        in_history = store.record(run_id, as_of, *incoming, components, quality,
                                  self.rulebook.content_hash, utc_now(),
                                  clock.perf_counter() - started)
        if final:
            # The marker names the run whose exports wait beside the published files: if the
            # process dies after the commit, whoever opens the project next moves them in.
            marker = self.export_dir / f"{PUBLISHING_MARKER}{run_id}"
            if exports:
                marker.touch()
            engine.publish_staged(plan, {"as_of": as_of.isoformat(sep=" "), "run_id": run_id,
                                         "rulebook_hash": self.rulebook.content_hash,
                                         "project": self.rulebook.config.name})
            self._move_exports_in(list(exports))
            marker.unlink(missing_ok=True)
        return plan, in_history

    def _move_exports_in(self, partials: list[Path]) -> None:
        for partial in partials:
            try:
                partial.replace(partial.with_name(partial.name.removesuffix(".next")))
            except OSError as exc:
                raise RetainerError(f"cannot move the export {partial.name} into place: "
                                    f"{exc.strerror}", hint="check the export directory's "
                                    "permissions; the database holds the results") from None

    def _finish_interrupted_publish(self) -> None:
        """Complete (or discard) exports a killed run left behind, so the exported files
        always match the published tables."""
        markers = list(self.export_dir.glob(f"{LEGACY_MARKER}*"))
        if not markers:
            return
        try:
            engine = DuckDBEngine(self.output_database, read_only=True)
        except RetainerError:
            return  # a run is publishing right now
        try:
            rows = engine.query(exp.select("value").from_("run_info").where(
                exp.column("key").eq(exp.Literal.string("run_id"))))
        except RetainerError:
            rows = []
        finally:
            engine.close()
        waiting = {_waiting_run(marker) for marker in markers}
        partials = sorted(self.export_dir.glob("*.next"))
        if rows and str(json.loads(rows[0][0])) in waiting:
            self._move_exports_in(partials)
        else:
            for partial in partials:
                partial.unlink(missing_ok=True)
        for marker in markers:
            marker.unlink(missing_ok=True)

    def _export_paths(self) -> dict[str, Path]:
        return {f"{name}.{fmt}": self.export_dir / f"{name}.{fmt}"
                for name in ("account_results", "contact_results")
                for fmt in self.rulebook.config.output.formats
                if (self.export_dir / f"{name}.{fmt}").exists()}

    def _write_exports(self, engine: DuckDBEngine, plan: Plan) -> dict[Path, Path]:
        """Write exports next to their final names before publishing; rename after."""
        written: dict[Path, Path] = {}
        keys = {"account_results": self.rulebook.key_column("account"),
                "contact_results": self.rulebook.key_column("contact")}
        for step in plan.outputs():
            if step.name not in keys:
                continue
            # Ordered by the key, so two exports of the same results are the same file.
            rows = exp.select(exp.Star()).from_(staged(step.name)).order_by(
                exp.column(keys[step.name]))
            for fmt in self.rulebook.config.output.formats:
                final = self.export_dir / f"{step.name}.{fmt}"
                partial = final.with_name(final.name + ".next")
                engine.export(rows, partial, fmt)
                written[partial] = final
        return written

    def _compile(self, catalog: Catalog, as_of: datetime) -> Plan:
        dialect = DIALECT_OF_ENGINE.get(self.rulebook.config.engine, "duckdb")
        return compile_plan(self.rulebook, catalog, as_of, utc_now(), dialect)

    @contextmanager
    def _compute(self, engine: DuckDBEngine) -> Iterator[Engine]:
        """The engine that computes: the local one, or the project's configured engine."""
        if self.rulebook.config.engine == "duckdb":
            yield engine
            return
        compute = create_engine(self.rulebook)
        try:
            yield compute
        finally:
            compute.close()

    @contextmanager
    def _engine(self, read_only: bool = False) -> Iterator[DuckDBEngine]:
        engine = DuckDBEngine(self.output_database, read_only=read_only)
        try:
            yield engine
        finally:
            engine.close()

    @contextmanager
    def store(self, engine: DuckDBEngine | None = None) -> Iterator[Store]:
        """The project's state store, opened (and migrated) for the duration; attached to
        `engine`'s connection when it is a DuckDB file."""
        store = open_store(self.rulebook.config.state, self.root,
                           engine.connection if engine else None)
        try:
            yield store
        finally:
            store.close()

    def results(self) -> DuckDBEngine:
        """A read-only connection to the published results (caller closes it)."""
        if not self.output_database.exists():
            raise RetainerError("no results yet", hint="run 'retainer run' first")
        return DuckDBEngine(self.output_database, read_only=True)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    return str(exc) or type(exc).__name__


def git_commit(root: Path) -> str | None:
    """The commit the project is at, when it is in a git repository."""
    try:
        done = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"],
                              capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def summarize(engine: DuckDBEngine, plan: Plan, as_of: datetime, seconds: float) -> RunReport:
    """Segment sizes, tag counts, bands and the quality report of a finished run."""
    account = plan.explain["levels"].get("account", {})
    dimensions: dict[str, list[tuple[str | None, int]]] = {}

    def counts(table: str, column: str) -> list[tuple[Any, int]]:
        query = (exp.select(exp.column(column), exp.Count(this=exp.Star()))
                 .from_(table).group_by(exp.column(column)).order_by(exp.column(column)))
        return [(row[0], int(row[1])) for row in engine.query(query)]

    for level in ("account", "contact"):
        for name in plan.explain["levels"].get(level, {}).get("dimensions", {}):
            dimensions[name] = counts(f"{level}_results", name)
    tags: dict[str, int] = {}
    for level in ("account", "contact"):
        for name in plan.explain["levels"].get(level, {}).get("tags", {}):
            query = exp.select(exp.Count(this=exp.Star())).from_(f"{level}_results").where(
                exp.column(name))
            tags[name] = int(engine.query(query)[0][0])
    bands = counts("account_results", "health_band") if "health" in account else []
    quality = [QualityRow(*row) for row in engine.query(
        exp.select(exp.Star()).from_("data_quality"))]
    total = int(engine.query(exp.select(exp.Count(this=exp.Star())).from_(
        "account_results"))[0][0])
    contacts = 0
    if "contact" in plan.explain["levels"]:
        contacts = int(engine.query(exp.select(exp.Count(this=exp.Star())).from_(
            "contact_results"))[0][0])
    return RunReport(as_of, seconds, total, contacts, dimensions, tags, bands, quality)
