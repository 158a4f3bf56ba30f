"""Where a Retainer run spends its time: every phase and every SQL statement, timed.

    .venv/bin/python benchmarks/profile_retainer.py [--small | --accounts N --events N]
    .venv/bin/python benchmarks/profile_retainer.py --explain agg_events_by_contact

Runs the unmodified `Project(dir).run(as_of)` on the benchmark's project (bench_run.py makes
it) with timers wrapped around the engine's methods, so the phases add up to the real run.
--explain STEP instead runs the plan's work steps up to STEP and prints DuckDB's
EXPLAIN ANALYZE of STEP. --what-if times the plan's work steps as compiled and again with
the rewrites suggested in README.md applied (see `rewrite`), and checks that both give the
same run_account and run_contact.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import shutil
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar, cast

from sqlglot import exp

import bench_run
from retainer.compile.plan import compile_plan
from retainer.engines.duckdb import DIALECT, DuckDBEngine
from retainer.project import Project
from worker import AS_OF

F = TypeVar("F", bound=Callable[..., Any])
OUTSIDE = "other statements (e.g. publishing)"
# Phases of a run worth timing: (module or class, attribute, label). Retainer's internals
# move; hooks whose attribute does not exist (any more) are skipped.
PHASES: list[tuple[str, str, str]] = [
    ("retainer.project:Project", "__init__", "load project"),
    ("retainer.engines.duckdb:DuckDBEngine", "attach_sources",
     "attach sources (views + DESCRIBE)"),
    ("retainer.project", "compile_plan", "compile rulebook"),
    ("retainer.engines.duckdb:DuckDBEngine", "load_previous_state", "load previous state"),
    ("retainer.engines.duckdb:DuckDBEngine", "execute", "execute work steps"),
    ("retainer.project:Project", "_write_exports", "export Parquet + CSV"),
    ("retainer.project:Project", "_export_partials", "export Parquet + CSV"),
    ("retainer.engines.duckdb:DuckDBEngine", "publish", "publish"),
    ("retainer.engines.duckdb:DuckDBEngine", "arrow", "results to Arrow (state store)"),
    ("retainer.state.store:Store", "record", "record the run in the state store"),
    ("retainer.project", "summarize", "summarize (counts for the report)"),
]


class RunProfile:
    """Wall-clock time per phase, and per SQL statement within the phase that ran it."""

    def __init__(self) -> None:
        self.active: list[str] = []
        self.phases: dict[str, tuple[float, float]] = {}
        self.statements: dict[str, list[tuple[str, float, float]]] = {}

    def phase(self, label: str, function: F) -> F:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if self.active:  # nested in another phase: counted there
                return function(*args, **kwargs)
            self.active.append(label)
            started, cpu = time.perf_counter(), time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                self.active.pop()
                wall, used = self.phases.get(label, (0.0, 0.0))
                self.phases[label] = (wall + time.perf_counter() - started,
                                      used + time.process_time() - cpu)

        return wrapper  # type: ignore[return-value]

    def statement(self, function: F) -> F:
        @functools.wraps(function)
        def wrapper(engine: Any, sql: str, what: str) -> Any:
            started, cpu = time.perf_counter(), time.process_time()
            try:
                return function(engine, sql, what)
            finally:
                phase = self.active[-1] if self.active else OUTSIDE
                self.statements.setdefault(phase, []).append(
                    (what, time.perf_counter() - started, time.process_time() - cpu))

        return wrapper  # type: ignore[return-value]

    def install(self) -> None:
        for target, attribute, label in PHASES:
            module_name, _, class_name = target.partition(":")
            try:
                owner: Any = importlib.import_module(module_name)
            except ImportError:
                continue
            if class_name:
                owner = getattr(owner, class_name, None)
            if owner is not None and hasattr(owner, attribute):
                setattr(owner, attribute, self.phase(label, getattr(owner, attribute)))
        DuckDBEngine._run = self.statement(DuckDBEngine._run)  # type: ignore[method-assign]

    def print(self, total: float, total_cpu: float) -> None:
        """Wall-clock and CPU seconds (all threads) per phase and statement: on a shared
        machine the CPU column is the steadier one."""
        def line(seconds: float, cpu: float, name: str) -> None:
            print(f"{seconds:8.2f} s {cpu:8.2f} s  {100 * seconds / total:5.1f} %  {name}")

        print(f"{'wall':>10} {'CPU':>8}  {'share':>7}")
        accounted = accounted_cpu = 0.0
        for label, (seconds, cpu) in self.phases.items():
            line(seconds, cpu, label)
            accounted += seconds
            accounted_cpu += cpu
            for what, took, used in sorted(self.statements.get(label, []), key=lambda s: -s[1]):
                line(took, used, f"  sql  {what}")
        outside = self.statements.get(OUTSIDE, [])
        if outside:
            line(sum(s[1] for s in outside), sum(s[2] for s in outside), OUTSIDE)
            accounted += sum(s[1] for s in outside)
            accounted_cpu += sum(s[2] for s in outside)
            for what, took, used in sorted(outside, key=lambda s: -s[1]):
                if took >= 0.005:
                    line(took, used, f"  sql  {what}")
        line(total - accounted, total_cpu - accounted_cpu,
             "not attributed (Python, state store, transaction commit)")
        line(total, total_cpu, "total")


def profile_run(root: Path) -> None:
    """Time the phases and statements of one daily run (history holds the previous day), as
    the benchmark runs it."""
    seed = root / ".retainer-seed"
    if not seed.exists():  # the previous day's run, as the benchmark's daily run has it
        shutil.rmtree(root / ".retainer", ignore_errors=True)
        Project(root).run(AS_OF - timedelta(days=1))
        shutil.copytree(root / ".retainer", seed)
    shutil.rmtree(root / ".retainer", ignore_errors=True)
    shutil.copytree(seed, root / ".retainer")
    profile = RunProfile()
    profile.install()
    started, cpu = time.perf_counter(), time.process_time()
    Project(root).run(AS_OF)
    profile.print(time.perf_counter() - started, time.process_time() - cpu)


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


def rewrite(step_name: str, query: exp.Query) -> exp.Query:
    """The compiled query with two rewrites that keep its meaning.

    1. COUNT(DISTINCT x) FILTER (WHERE p)  ->  COUNT(DISTINCT CASE WHEN p THEN x END):
       COUNT DISTINCT ignores NULLs, and DuckDB then groups on (key, x) for the rows where p
       holds instead of on (key, x, p) for every row.
    2. An aggregate pass that carries no quality counts and whose every aggregate has a
       FILTER gets WHERE (p1 OR p2 OR ...): rows no aggregate uses are dropped before the
       joins of the staging view and before grouping, and time bounds reach the Parquet scan.
       Groups without rows disappear, which the defaults applied when joining already cover.
    """
    query = query.copy()

    def distinct_as_case(node: exp.Expr) -> exp.Expr:
        counted = node.this if isinstance(node, exp.Filter) else None
        if isinstance(counted, exp.Count) and isinstance(counted.this, exp.Distinct):
            condition = node.expression.this
            value = counted.this.expressions[0]
            case = exp.Case(ifs=[exp.If(this=condition, true=value)])
            return exp.Count(this=exp.Distinct(expressions=[case]))
        return node

    query = cast(exp.Query, query.transform(distinct_as_case))
    if not step_name.startswith("agg_") or not isinstance(query, exp.Select):
        return query
    aggregates = [e.unalias() for e in query.expressions[1:]]
    if any(isinstance(e, exp.Alias) and e.alias == "__rows" for e in query.expressions):
        return query  # the pass counts every row for the quality report
    conditions: list[exp.Expr] = []
    for aggregate in aggregates:
        filters = list(aggregate.find_all(exp.Filter))
        cases = [c for c in aggregate.find_all(exp.Case) if isinstance(c.parent, exp.Distinct)]
        if filters:
            conditions += [f.expression.this.copy() for f in filters]
        elif cases:
            conditions += [c.args["ifs"][0].this.copy() for c in cases]
        else:
            return query  # an aggregate over every row
    return query.where(exp.or_(*(exp.paren(c) for c in conditions)))


def what_if(root: Path) -> None:
    """Time the work steps as compiled and rewritten; check the results are the same."""
    loaded = Project(root)
    totals: dict[str, float] = {}
    per_step: dict[str, dict[str, float]] = {}
    saved = root / "what-if"
    saved.mkdir(exist_ok=True)
    for variant in ("compiled", "rewritten"):
        engine = DuckDBEngine()
        try:
            started = time.perf_counter()
            catalog = engine.attach_sources(loaded.rulebook)
            plan = compile_plan(loaded.rulebook, catalog, AS_OF)
            for step in plan.work():
                query = step.query if variant == "compiled" else rewrite(step.name, step.query)
                kind = "VIEW" if step.kind == "view" else "TABLE"
                create = exp.Create(this=exp.to_table(step.name), kind=kind, replace=True,
                                    expression=query)
                began = time.perf_counter()
                engine.connection.execute(create.sql(DIALECT))
                per_step.setdefault(step.name, {})[variant] = time.perf_counter() - began
            totals[variant] = time.perf_counter() - started
            for table in ("run_account", "run_contact"):
                target = saved / f"{variant}_{table}.parquet"
                engine.connection.execute(f"COPY {table} TO '{target}' (FORMAT PARQUET)")
        finally:
            engine.close()
    print(f"{'work step':<24}{'compiled s':>12}{'rewritten s':>13}")
    for name, seconds in per_step.items():
        print(f"{name:<24}{seconds['compiled']:>12.2f}{seconds['rewritten']:>13.2f}")
    print(f"{'attach + all work steps':<24}{totals['compiled']:>12.2f}"
          f"{totals['rewritten']:>13.2f}")
    import duckdb

    checker = duckdb.connect()
    for table in ("run_account", "run_contact"):
        a, b = (saved / f"{v}_{table}.parquet" for v in ("compiled", "rewritten"))
        differ = checker.execute(
            f"SELECT (SELECT count(*) FROM (FROM '{a}' EXCEPT ALL FROM '{b}'))"
            f" + (SELECT count(*) FROM (FROM '{b}' EXCEPT ALL FROM '{a}'))").fetchone()
        print(f"{table}: {differ[0] if differ else '?'} rows differ")
    checker.close()
    shutil.rmtree(saved)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--explain", metavar="STEP", help="EXPLAIN ANALYZE one plan step")
    parser.add_argument("--what-if", action="store_true",
                        help="time the work steps as compiled and with the suggested rewrites")
    args = parser.parse_args(argv)
    if args.small:
        args.accounts, args.events = 2_000, 200_000
    root = bench_run.prepare(args.accounts, args.events)
    if args.explain:
        explain(root, args.explain)
    elif args.what_if:
        what_if(root)
    else:
        profile_run(root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
