"""Where a Retainer run spends its time: every phase and every SQL statement, timed.

    .venv/bin/python benchmarks/profile_retainer.py [--small | --accounts N --events N]
    .venv/bin/python benchmarks/profile_retainer.py --explain agg_events_by_contact

Runs the unmodified `Project(dir).run(as_of)` on the benchmark's project (bench_run.py makes
it) with timers wrapped around the engine's methods, so the phases add up to the real run.
--explain STEP instead runs the plan's work steps up to STEP and prints DuckDB's
EXPLAIN ANALYZE of STEP.
"""

from __future__ import annotations

import argparse
import functools
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import bench_run
from retainer import project as project_module
from retainer.compile.plan import compile_plan
from retainer.engines.duckdb import DIALECT, DuckDBEngine
from retainer.project import Project
from worker import AS_OF

F = TypeVar("F", bound=Callable[..., Any])
timings: list[tuple[str, float]] = []


def timed(label: str | Callable[..., str], function: F) -> F:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            name = label(*args, **kwargs) if callable(label) else label
            timings.append((name, time.perf_counter() - started))

    return wrapper  # type: ignore[return-value]


def profile_run(root: Path) -> None:
    """Time the phases and statements of one full run."""
    DuckDBEngine._run = timed(lambda _self, _sql, what: f"  sql  {what}",  # type: ignore[method-assign]
                              DuckDBEngine._run)
    DuckDBEngine.attach_sources = timed(  # type: ignore[method-assign]
        "attach sources (views + DESCRIBE)", DuckDBEngine.attach_sources)
    DuckDBEngine.execute = timed("execute work steps", DuckDBEngine.execute)  # type: ignore[method-assign]
    DuckDBEngine.publish = timed("publish (one transaction)", DuckDBEngine.publish)  # type: ignore[method-assign]
    Project._export_partials = timed("export Parquet + CSV", Project._export_partials)  # type: ignore[method-assign]
    project_module.compile_plan = timed("compile rulebook", project_module.compile_plan)  # type: ignore[attr-defined]
    project_module.summarize = timed("summarize (counts for the report)",
                                     project_module.summarize)
    shutil.rmtree(root / ".retainer", ignore_errors=True)
    started = time.perf_counter()
    loaded = timed("load project", Project)(root)
    loaded.run(AS_OF)
    total = time.perf_counter() - started
    for name, seconds in _phase_order(timings):
        print(f"{seconds:8.2f} s  {100 * seconds / total:5.1f} %  {name}")
    print(f"{total:8.2f} s  100.0 %  total")


def _phase_order(items: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """Statements are recorded before the phase that contains them; list phases first."""
    ordered: list[tuple[str, float]] = []
    pending: list[tuple[str, float]] = []
    for name, seconds in items:
        if name.startswith("  "):
            pending.append((name, seconds))
        else:
            ordered.append((name, seconds))
            ordered.extend(sorted(pending, key=lambda item: -item[1]))
            pending = []
    return ordered + pending


def explain(root: Path, target: str) -> None:
    """EXPLAIN ANALYZE one work step, after running the steps it depends on."""
    loaded = Project(root)
    engine = DuckDBEngine()
    try:
        catalog = engine.attach_sources(loaded.rulebook)
        plan = compile_plan(loaded.rulebook, catalog, AS_OF)
        steps = {step.name: step for step in plan.steps}
        if target not in steps:
            raise SystemExit(f"no step {target}; steps: {', '.join(steps)}")
        for step in plan.work():
            if step.name == target:
                break
            engine.connection.execute(step.statement(DIALECT))
        query = steps[target].query.sql(DIALECT)
        engine.connection.execute("PRAGMA explain_output = 'all'")
        rows = engine.connection.execute(f"EXPLAIN ANALYZE {query}").fetchall()
        for row in rows:
            print(row[-1])
    finally:
        engine.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--explain", metavar="STEP", help="EXPLAIN ANALYZE one plan step")
    args = parser.parse_args(argv)
    if args.small:
        args.accounts, args.events = 2_000, 200_000
    root = bench_run.prepare(args.accounts, args.events)
    if args.explain:
        explain(root, args.explain)
    else:
        profile_run(root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
