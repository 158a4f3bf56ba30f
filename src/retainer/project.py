"""The facade the CLI, the tests and (later) the API drive: load → validate → plan → run."""

from __future__ import annotations

import time as clock
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from retainer.compile.catalog import Catalog
from retainer.compile.plan import Plan, compile_plan
from retainer.engines.base import Progress
from retainer.engines.duckdb import DuckDBEngine
from retainer.rulebook.loader import Rulebook, load_project


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def parse_as_of(value: str | date | datetime | None) -> datetime:
    """`2026-11-30` → midnight UTC at the start of that day; times with an offset → UTC."""
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
            from retainer.errors import RetainerError
            raise RetainerError(f"'{value}' is not a date or time",
                                hint="write --as-of 2026-11-30 or 2026-11-30T12:00:00Z"
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


class Project:
    """A loaded project directory."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).resolve()
        self.rulebook: Rulebook = load_project(self.root)

    @property
    def output_database(self) -> Path:
        return self.rulebook.path(self.rulebook.config.output.database)

    @property
    def export_dir(self) -> Path:
        return self.rulebook.path(self.rulebook.config.output.export_dir)

    def catalog(self) -> Catalog:
        engine = DuckDBEngine()
        try:
            return engine.attach_sources(self.rulebook)
        finally:
            engine.close()

    def plan(self, as_of: datetime | None = None, catalog: Catalog | None = None,
             dialect: str = "duckdb") -> Plan:
        """Validate the rulebook against the sources and compile it for `dialect`."""
        return compile_plan(self.rulebook, catalog or self.catalog(), as_of or utc_now(),
                            utc_now(), dialect)

    def run(self, as_of: datetime | None = None, progress: Progress | None = None) -> RunReport:
        """Compute everything and publish it; on any failure the previous output stays."""
        started = clock.perf_counter()
        as_of = as_of or utc_now()
        with self._engine() as engine:
            catalog = engine.attach_sources(self.rulebook)
            plan = compile_plan(self.rulebook, catalog, as_of, utc_now())
            engine.execute(plan, progress)
            exports = self._export_partials(engine, plan)
            engine.publish(plan, {"as_of": as_of.isoformat(sep=" "), "finished_at":
                                  utc_now().isoformat(sep=" "),
                                  "rulebook_hash": self.rulebook.content_hash,
                                  "project": self.rulebook.config.name})
            for partial, final in exports.items():
                partial.replace(final)
            report = summarize(engine, plan, as_of, clock.perf_counter() - started)
        return RunReport(**{**report.__dict__, "outputs": {
            "database": self.output_database, **{p.name: p for p in exports.values()}}})

    def _export_partials(self, engine: DuckDBEngine, plan: Plan) -> dict[Path, Path]:
        """Write exports next to their final names before publishing; rename after."""
        written: dict[Path, Path] = {}
        formats = self.rulebook.config.output.formats
        for step in plan.outputs():
            if not step.name.endswith("_results"):
                continue
            for fmt in formats:
                final = self.export_dir / f"{step.name}.{fmt}"
                partial = final.with_name(final.name + ".next")
                engine.export(step.query, partial, fmt)
                written[partial] = final
        return written

    @contextmanager
    def _engine(self, read_only: bool = False) -> Iterator[DuckDBEngine]:
        engine = DuckDBEngine(self.output_database, read_only=read_only)
        try:
            yield engine
        finally:
            engine.close()

    def results(self) -> DuckDBEngine:
        """A read-only connection to the published results (caller closes it)."""
        from retainer.errors import RetainerError
        if not self.output_database.exists():
            raise RetainerError("no results yet", hint="run 'retainer run' first")
        return DuckDBEngine(self.output_database, read_only=True)


def summarize(engine: DuckDBEngine, plan: Plan, as_of: datetime, seconds: float) -> RunReport:
    """Segment sizes, tag counts, bands and the quality report of a finished run."""
    from sqlglot import exp

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
