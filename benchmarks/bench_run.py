"""Retainer's full run against a hand-written DuckDB statement and hand-written pandas.

    .venv/bin/python benchmarks/bench_run.py [--accounts 100000 --events 10000000 --repeat 3]
    .venv/bin/python benchmarks/bench_run.py --small          # 2k accounts, 200k events

Generates the demo data once into benchmarks/data/<size>/ (a demo project: the rulebook
template plus data/), then runs each implementation --repeat times, every run in a fresh
process, and keeps the best wall-clock time. All three compute the demo rulebook's account
and contact results as of 2026-12-01; the last run of each is checked cell by cell against
Retainer's (exit status 1 on any disagreement). See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA_ROOT = HERE / "data"
END = datetime(2026, 12, 1)
SEED = 7
LABELS = {
    "retainer": "Retainer full run",
    "sql": "hand-written SQL",
    "pandas": "hand-written pandas",
}
TARGET_VS_SQL = 1.2  # retainer / hand SQL at most
TARGET_VS_PANDAS = 3.0  # pandas / retainer at least


@dataclass
class Timings:
    name: str
    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)
    max_rss_mib: list[float] = field(default_factory=list)

    @property
    def best(self) -> float:
        return min(self.seconds)

    @property
    def best_cpu(self) -> float:
        return min(self.cpu_seconds)


def size_name(accounts: int, events: int) -> str:
    return f"a{accounts}_e{events}"


def without_state_machines(segments: Path) -> None:
    """The hand-written versions keep no history, so stages cannot be held by a state
    machine there: the benchmark's rulebook is the demo's without its `state_machine`s."""
    from ruamel.yaml import YAML

    yaml = YAML()
    document = yaml.load(segments)
    for dimension in document["segments"].values():
        if isinstance(dimension, dict):
            dimension.pop("state_machine", None)
    with segments.open("w") as handle:
        yaml.dump(document, handle)
    shutil.rmtree(segments.parent.parent / ".retainer-seed", ignore_errors=True)


def prepare(accounts: int, events: int) -> Path:
    """The demo project for this size: the rulebook template (refreshed every time, so that
    rulebook changes are benchmarked) and its data (generated once, then reused)."""
    project = DATA_ROOT / size_name(accounts, events)
    template = resources.files("retainer.demo") / "project"
    with resources.as_file(template) as source:
        shutil.copytree(source, project, dirs_exist_ok=True)
    without_state_machines(project / "rulebook" / "segments.yml")
    marker = project / "data" / ".generated.json"
    wanted = {"accounts": accounts, "events": events, "seed": SEED, "end": END.isoformat()}
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        print(f"data: reusing {project.relative_to(HERE.parent)}")
        return project
    from retainer.demo.generator import generate

    print(f"data: generating {accounts:,} accounts / {events:,} events into "
          f"{project.relative_to(HERE.parent)} ...", flush=True)
    started = time.perf_counter()
    shutil.rmtree(project / "data", ignore_errors=True)
    summary = generate(project / "data", accounts=accounts, events=events, seed=SEED, end=END)
    marker.write_text(json.dumps(wanted))
    print(f"data: {summary.accounts:,} accounts, {summary.contacts:,} contacts, "
          f"{summary.events:,} events, {summary.tickets:,} tickets, {summary.surveys:,} "
          f"surveys in {time.perf_counter() - started:.1f} s")
    return project


def run_worker(name: str, project: Path, save: Path | None) -> dict[str, float]:
    command = [sys.executable, str(HERE / "worker.py"), name, str(project)]
    if save is not None:
        command += ["--save", str(save)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"{name} failed (exit {done.returncode})")
    report: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def measure(names: list[str], project: Path, repeat: int, save: Path) -> dict[str, Timings]:
    """Interleaved repeats (r1: a b c, r2: a b c, ...); the last run of each saves results."""
    timings = {name: Timings(name) for name in names}
    for round_ in range(repeat):
        for name in names:
            last = round_ == repeat - 1
            run = run_worker(name, project, save if last else None)
            timings[name].seconds.append(run["seconds"])
            timings[name].cpu_seconds.append(run["cpu_seconds"])
            timings[name].max_rss_mib.append(run["max_rss_mib"])
            print(f"  run {round_ + 1}/{repeat}  {LABELS[name]:<20} {run['seconds']:8.2f} s  "
                  f"(CPU {run['cpu_seconds']:6.2f} s)  {run['max_rss_mib']:7.0f} MiB", flush=True)
    return timings


def check(names: list[str], save: Path) -> int:
    """Compare every implementation with Retainer; returns the number of disagreements."""
    from compare import compare_files
    from worker import results_paths

    if "retainer" not in names:
        print("agreement: not checked (Retainer was not run)")
        return 0
    reference = results_paths(save, "retainer")
    total = 0
    for name in names:
        if name == "retainer":
            continue
        for level, key, ref, other in zip(("accounts", "contacts"), ("account_id", "contact_id"),
                                          reference, results_paths(save, name), strict=True):
            found = compare_files(ref, other, key, level)
            total += found.total
            status = "agree" if found.total == 0 else f"{found.total:,} disagreements"
            print(f"agreement: {LABELS[name]:<20} {level:<8} {found.rows:>9,} rows  {status}")
            for column, count in found.by_column.items():
                print(f"    {column}: {count:,}")
            if found.missing_rows or found.extra_rows:
                print(f"    rows missing: {found.missing_rows:,}, extra: {found.extra_rows:,}")
            for example in found.examples[:5]:
                print(f"    e.g. {example}")
    return total


def report(timings: dict[str, Timings]) -> None:
    import duckdb

    threads = duckdb.connect().execute("SELECT current_setting('threads')").fetchone()
    print(f"\nmachine: {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"DuckDB {duckdb.__version__} ({threads[0] if threads else '?'} threads), "
          f"load average before the report {os.getloadavg()[0]:.1f}")
    print(f"{'implementation':<22}{'best s':>8}{'best CPU s':>12}  {'all runs (s)':<28}"
          f"{'peak RSS':>10}")
    for item in timings.values():
        runs = " ".join(f"{s:.2f}" for s in item.seconds)
        print(f"{LABELS[item.name]:<22}{item.best:>8.2f}{item.best_cpu:>12.2f}  {runs:<28}"
              f"{max(item.max_rss_mib):>6.0f} MiB")
    ratios = (("retainer", "sql", "retainer / hand SQL", TARGET_VS_SQL, "<="),
              ("pandas", "retainer", "pandas / retainer  ", TARGET_VS_PANDAS, ">="))
    for top, bottom, label, target, direction in ratios:
        if top not in timings or bottom not in timings:
            continue
        wall = timings[top].best / timings[bottom].best
        cpu = timings[top].best_cpu / timings[bottom].best_cpu
        met = wall <= target if direction == "<=" else wall >= target
        print(f"{label} = {wall:.2f} wall, {cpu:.2f} CPU   "
              f"(target {direction} {target}: {'met' if met else 'MISSED'})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--small", action="store_true",
                        help="quick check: 2,000 accounts and 200,000 events")
    parser.add_argument("--repeat", type=int, default=3, help="runs per implementation")
    parser.add_argument("--only", nargs="+", choices=list(LABELS), default=list(LABELS),
                        help="run only these implementations")
    parser.add_argument("--json", type=Path, help="also write the timings here")
    args = parser.parse_args(argv)
    if args.small:
        args.accounts, args.events = 2_000, 200_000
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    project = prepare(args.accounts, args.events)
    save = project / "results"
    shutil.rmtree(save, ignore_errors=True)
    print(f"as of {END:%Y-%m-%d}, best of {args.repeat}, each run in a fresh process")
    timings = measure(args.only, project, args.repeat, save)
    disagreements = check(args.only, save)
    report(timings)
    if args.json is not None:
        args.json.write_text(json.dumps({
            "accounts": args.accounts, "events": args.events, "repeat": args.repeat,
            "disagreements": disagreements,
            "timings": {t.name: {"seconds": t.seconds, "cpu_seconds": t.cpu_seconds,
                                 "max_rss_mib": t.max_rss_mib} for t in timings.values()},
        }, indent=2))
    if disagreements:
        print(f"\nFAIL: {disagreements:,} disagreements with Retainer's results")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
