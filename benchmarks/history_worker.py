"""The backfill worker: a fresh process (`bench_history.py --worker`) that backfills a
project in chunks of dates, timing Retainer's main phases; parts 1 and 2 both start it."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from history_data import HERE, MB


class Phases:
    """Seconds spent in a few of Retainer's functions, by wrapping them in this process.

    Best effort: a function that is not there (the code moves) is skipped, and what is not
    attributed shows up as `other`.
    """

    TARGETS = (
        ("retainer.engines.duckdb", "DuckDBEngine", "attach_sources", "attach sources"),
        ("retainer.engines.duckdb", "DuckDBEngine", "materialize_sources", "read sources"),
        ("retainer.project", None, "compile_plan", "compile"),
        ("retainer.state.store", "Store", "open_memberships", "read open memberships"),
        ("retainer.engines.duckdb", "DuckDBEngine", "load_previous_state",
         "load previous state"),
        ("retainer.engines.duckdb", "DuckDBEngine", "execute", "work steps"),
        ("retainer.project", "Project", "_write_exports", "exports"),
        ("retainer.state.store", "Store", "record", "record in the store"),
    )

    def __init__(self) -> None:
        import importlib

        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.each: dict[str, list[float]] = {}  # every call's seconds, to see trends
        for module_name, owner_name, attribute, label in self.TARGETS:
            module = importlib.import_module(module_name)
            owner = getattr(module, owner_name) if owner_name else module
            function = getattr(owner, attribute, None)
            if callable(function):
                setattr(owner, attribute, self._timed(function, label))

    def _timed(self, function: Callable[..., Any], label: str) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                seconds = time.perf_counter() - began
                self.seconds[label] = self.seconds.get(label, 0.0) + seconds
                self.calls[label] = self.calls.get(label, 0) + 1
                self.each.setdefault(label, []).append(seconds)
        return timed


def worker(argv: list[str]) -> int:
    """`--worker PROJECT OUT.json FIRST_AS_OF COUNT EVERY_DAYS CHUNK BUDGET_S SIZES`: backfill
    COUNT dates in chunks of CHUNK dates (one `Project.backfill` call per chunk), stopping
    before a chunk that would end after BUDGET_S seconds (0: no limit); with SIZES=1 measure
    the store's size after each chunk (not counted in the backfill time)."""
    project, out = Path(argv[0]), Path(argv[1])
    first, count, every = datetime.fromisoformat(argv[2]), int(argv[3]), int(argv[4])
    chunk, budget, sizes = int(argv[5]), float(argv[6]), argv[7] == "1"
    phases = Phases()
    from retainer.project import Project

    step = timedelta(days=every)
    dates = [first + step * i for i in range(count)]
    chunks = [dates[i:i + chunk] for i in range(0, count, chunk)]
    result: dict[str, Any] = {"chunks": [], "complete": False}
    spent = 0.0
    cpu_began = time.process_time()
    for number, part in enumerate(chunks):
        if number and budget and spent + result["chunks"][-1]["seconds"] * len(part) / \
                result["chunks"][-1]["dates"] > budget:
            break
        began = time.perf_counter()
        report = Project(project).backfill(part[0], part[-1], step)
        seconds = time.perf_counter() - began
        spent += seconds
        entry: dict[str, Any] = {"dates": len(report.dates), "first": part[0].isoformat(),
                                 "last": part[-1].isoformat(), "seconds": seconds,
                                 "report_seconds": report.seconds}
        if sizes:
            measured = time.perf_counter()
            with Project(project).store() as store:
                entry["store_bytes"] = store.size_bytes()
            entry["size_seconds"] = time.perf_counter() - measured
        result["chunks"].append(entry)
        done = sum(c["dates"] for c in result["chunks"])
        print(f"  backfilled {done}/{count} dates (to {part[-1]:%Y-%m-%d}): chunk "
              f"{seconds:.1f} s, {seconds / len(part):.2f} s/date, total {spent:.0f} s"
              + (f", store {entry['store_bytes'] / MB:.1f} MB" if sizes else ""), flush=True)
    result["complete"] = sum(c["dates"] for c in result["chunks"]) == count
    result["seconds"] = spent
    result["cpu_seconds"] = time.process_time() - cpu_began
    result["phases"] = phases.seconds
    result["phase_calls"] = phases.calls
    result["phase_each"] = phases.each
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out.write_text(json.dumps(result, indent=1))
    return 0


@contextmanager
def child_clock() -> Iterator[dict[str, float]]:
    """Wall-clock time of a block, and the CPU time of the child processes it waited for."""
    timing: dict[str, float] = {}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    yield timing
    timing["seconds"] = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    timing["cpu_seconds"] = (after.ru_utime - before.ru_utime) + (after.ru_stime
                                                                   - before.ru_stime)


def run_worker(project: Path, dates: list[datetime], every_days: int, chunk: int,
               budget_s: float, sizes: bool) -> dict[str, Any]:
    out = project.parent / f"{project.name}.worker.json"
    out.unlink(missing_ok=True)
    command = [sys.executable, str(HERE / "bench_history.py"), "--worker", str(project),
               str(out), dates[0].isoformat(), str(len(dates)), str(every_days), str(chunk),
               str(budget_s), "1" if sizes else "0"]
    with child_clock() as timing:
        done = subprocess.run(command, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the backfill worker failed (exit {done.returncode})")
    result: dict[str, Any] = json.loads(out.read_text())
    result["process_seconds"] = timing["seconds"]
    result["process_cpu_seconds"] = timing["cpu_seconds"]
    return result
