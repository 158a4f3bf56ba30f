"""History benchmarks: a backfill against one run per date, and the state store's size.

    .venv/bin/python benchmarks/bench_history.py            # both parts at full size
    .venv/bin/python benchmarks/bench_history.py --quick    # 2k accounts: a sanity run
    .venv/bin/python benchmarks/bench_history.py --only backfill --accounts 5000 --dates 10
    .venv/bin/python benchmarks/bench_history.py --only size --size-budget-min 90
    .venv/bin/python benchmarks/bench_history.py --freeze-src   # others are editing src/

Part 1 (backfill) builds the history of N weekly dates ending 2026-12-01 twice, into two fresh
copies of the demo project: (a) one `Project.backfill` call, (b) one `retainer run --as-of D`
process per date, as a cron job would. It checks that both state stores hold identical
membership intervals and identical health per date, and prints both wall times and their
ratio. Part 2 (size) backfills a year of daily dates over 100k accounts and reports the state
store's size and what it is made of. Results are printed and written into the marked sections
of benchmarks/history.md. See that file for what exactly is measured.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATA_ROOT = HERE / "data"
WORK = DATA_ROOT / "history"  # this benchmark's own projects and generated data
REPORT = HERE / "history.md"
END = datetime(2026, 12, 1)
SEED = 7
MB = 1_000_000
MEMBERSHIP_COLUMNS = ("level", "entity_id", "dimension", "segment", "entered_at", "exited_at",
                      "reason")

# --- data and projects ---------------------------------------------------------------------


def size_name(accounts: int, events: int) -> str:
    return f"a{accounts}_e{events}"


def shared_data(accounts: int, events: int) -> Path | None:
    """Generated data of this size that is already there: the main benchmark's (same seed
    and end, see bench_run.py) or this benchmark's own."""
    wanted = {"accounts": accounts, "events": events, "seed": SEED, "end": END.isoformat()}
    for base in (DATA_ROOT, WORK):
        marker = base / size_name(accounts, events) / "data" / ".generated.json"
        try:
            if json.loads(marker.read_text()) == wanted:
                return marker.parent
        except (OSError, ValueError):
            continue
    return None


def source_data(accounts: int, events: int) -> Path:
    """The demo data of this size, generated once into benchmarks/data/history/ if needed."""
    found = shared_data(accounts, events)
    if found is not None:
        print(f"data: reusing {found.relative_to(HERE.parent)}")
        return found
    from retainer.demo.generator import generate

    data = WORK / size_name(accounts, events) / "data"
    print(f"data: generating {accounts:,} accounts / {events:,} events into "
          f"{data.relative_to(HERE.parent)} ...", flush=True)
    started = time.perf_counter()
    shutil.rmtree(data, ignore_errors=True)
    summary = generate(data, accounts=accounts, events=events, seed=SEED, end=END)
    (data / ".generated.json").write_text(json.dumps(
        {"accounts": accounts, "events": events, "seed": SEED, "end": END.isoformat()}))
    print(f"data: {summary.accounts:,} accounts, {summary.contacts:,} contacts, "
          f"{summary.events:,} events in {time.perf_counter() - started:.1f} s")
    return data


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)  # free, and immune to the shared copy being regenerated
    except OSError:
        shutil.copy2(source, target)


def fresh_project(directory: Path, data: Path) -> Path:
    """A new demo project: the rulebook template from the source tree and `data`."""
    shutil.rmtree(directory, ignore_errors=True)
    template = resources.files("retainer.demo") / "project"
    with resources.as_file(template) as source:
        shutil.copytree(source, directory)
    shutil.copytree(data, directory / "data", copy_function=_link_or_copy)
    return directory


def warm_cache(data: Path) -> None:
    """Read the source files once so neither contender pays for the first disk read."""
    for path in sorted(data.iterdir()):
        with path.open("rb") as handle:
            while handle.read(1 << 24):
                pass


def state_path(project: Path) -> Path:
    from retainer.project import Project

    spec = Project(project).rulebook.config.state
    path = Path(spec).expanduser()
    return path if path.is_absolute() else project / path


def daily(end: datetime, count: int, every: timedelta) -> list[datetime]:
    return [end - every * (count - 1 - i) for i in range(count)]


# --- the backfill worker (a fresh process; parts 1 and 2 both start it) ---------------------


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
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", str(project),
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


# --- reading the state stores ---------------------------------------------------------------


def connect(*stores: tuple[str, Path]) -> Any:
    import duckdb

    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    for alias, path in stores:
        connection.execute(f"ATTACH '{path}' AS {alias} (READ_ONLY)")
    return connection


def one(connection: Any, sql: str) -> Any:
    return connection.execute(sql).fetchone()[0]


def history_dates(connection: Any, alias: str) -> list[datetime]:
    return [row[0] for row in connection.execute(
        f"SELECT as_of FROM {alias}.runs WHERE in_history ORDER BY as_of").fetchall()]


def compare_stores(a: Path, b: Path) -> dict[str, Any]:
    """Membership intervals and health per date of two stores, compared as multisets."""
    connection = connect(("a", a), ("b", b))
    columns = ", ".join(MEMBERSHIP_COLUMNS)
    found: dict[str, Any] = {}
    for alias in ("a", "b"):
        found[f"memberships_{alias}"] = one(connection,
                                            f"SELECT count(*) FROM {alias}.memberships")
        found[f"dates_{alias}"] = [d.isoformat() for d in history_dates(connection, alias)]
        found[f"failed_{alias}"] = one(connection, f"SELECT count(*) FROM {alias}.runs "
                                                   "WHERE status NOT IN ('succeeded')")

    def differ(left: str, right: str, select: str, table: str) -> int:
        return int(one(connection, f"SELECT count(*) FROM (SELECT {select} FROM {left}.{table} "
                                   f"EXCEPT ALL SELECT {select} FROM {right}.{table})"))

    found["memberships_only_backfill"] = differ("a", "b", columns, "memberships")
    found["memberships_only_runs"] = differ("b", "a", columns, "memberships")
    if found["memberships_only_backfill"] or found["memberships_only_runs"]:
        found["membership_examples"] = [list(map(str, row)) for row in connection.execute(
            f"(SELECT 'backfill only', {columns} FROM a.memberships EXCEPT ALL "
            f"SELECT 'backfill only', {columns} FROM b.memberships LIMIT 3) UNION ALL "
            f"(SELECT 'runs only', {columns} FROM b.memberships EXCEPT ALL "
            f"SELECT 'runs only', {columns} FROM a.memberships LIMIT 3)").fetchall()]
    health_columns = [row[0] for row in connection.execute(
        "SELECT column_name FROM duckdb_columns() WHERE database_name = 'a' AND "
        "table_name = 'health' AND column_name <> 'run_id' ORDER BY column_index").fetchall()]
    select = ", ".join(["r.as_of"] + [f"h.{c}" for c in health_columns])

    def health(alias: str) -> str:
        return (f"SELECT {select} FROM {alias}.health h JOIN {alias}.runs r "
                "ON r.run_id = h.run_id WHERE r.in_history")

    found["health_columns"] = health_columns
    for alias in ("a", "b"):
        found[f"health_{alias}"] = one(connection, f"SELECT count(*) FROM ({health(alias)})")
    found["health_only_backfill"] = int(one(connection, f"SELECT count(*) FROM "
                                        f"({health('a')} EXCEPT ALL {health('b')})"))
    found["health_only_runs"] = int(one(connection, f"SELECT count(*) FROM "
                                    f"({health('b')} EXCEPT ALL {health('a')})"))
    if found["health_only_backfill"] or found["health_only_runs"]:
        row = connection.execute(
            f"SELECT count(*), max(abs(x.score - y.score)), count(*) FILTER (WHERE x.band IS "
            f"DISTINCT FROM y.band) FROM ({health('a')}) x JOIN ({health('b')}) y "
            "ON x.as_of = y.as_of AND x.entity_id = y.entity_id "
            "WHERE x.score IS DISTINCT FROM y.score OR x.band IS DISTINCT FROM y.band").fetchone()
        found["health_score_or_band_differs"] = row[0]
        found["health_max_score_difference"] = row[1]
        found["health_band_differs"] = row[2]
    found["identical"] = (found["dates_a"] == found["dates_b"] and not any(
        found[k] for k in ("memberships_only_backfill", "memberships_only_runs",
                           "health_only_backfill", "health_only_runs")))
    connection.close()
    return found


def durations(path: Path) -> list[float]:
    connection = connect(("s", path))
    rows = connection.execute("SELECT duration_s FROM s.runs WHERE in_history "
                              "ORDER BY as_of").fetchall()
    connection.close()
    return [float(row[0] or 0.0) for row in rows]


# --- part 1: one backfill against one run per date -------------------------------------------


def part_backfill(args: argparse.Namespace) -> dict[str, Any]:
    every = args.every_days
    dates = daily(END, args.dates, timedelta(days=every))
    print(f"\n== Backfill efficiency: {args.dates} dates every {every} days, "
          f"{dates[0]:%Y-%m-%d} .. {dates[-1]:%Y-%m-%d}, {args.accounts:,} accounts / "
          f"{args.events:,} events ==")
    data = source_data(args.accounts, args.events)
    base = WORK / "backfill_vs_runs" / size_name(args.accounts, args.events)
    filled = fresh_project(base / "backfill", data)
    cron = fresh_project(base / "runs", data)
    warm_cache(data)
    load_before, src_before, where = os.getloadavg()[0], src_fingerprint(), context()

    print(f"(a) one backfill call in a fresh process: {len(dates)} dates ...", flush=True)
    backfill = run_worker(filled, dates, every, len(dates), 0, sizes=False)
    print(f"    {backfill['process_seconds']:.1f} s wall ({backfill['seconds']:.1f} s in "
          f"backfill), {backfill['process_cpu_seconds']:.1f} s CPU, "
          f"peak RSS {backfill['peak_rss_mib']:.0f} MiB")

    retainer = Path(sys.executable).parent / "retainer"
    print(f"(b) {len(dates)} processes `retainer run -p DIR --as-of D`, one per date ...",
          flush=True)
    runs: list[dict[str, float]] = []
    with child_clock() as total:
        for moment in dates:
            with child_clock() as timing:
                done = subprocess.run([str(retainer), "run", "-p", str(cron), "--as-of",
                                       moment.strftime("%Y-%m-%d")], capture_output=True,
                                      text=True, check=False)
            if done.returncode != 0:
                sys.stderr.write(done.stdout + done.stderr)
                raise SystemExit(f"retainer run --as-of {moment:%Y-%m-%d} failed")
            runs.append(timing)
            print(f"    {moment:%Y-%m-%d}  {timing['seconds']:6.2f} s", flush=True)
    load_after = os.getloadavg()[0]
    print(f"    {total['seconds']:.1f} s wall, {total['cpu_seconds']:.1f} s CPU")

    print("checking that both stores hold the same history ...", flush=True)
    check = compare_stores(state_path(filled), state_path(cron))
    ratio = total["seconds"] / backfill["process_seconds"]
    cpu_ratio = total["cpu_seconds"] / backfill["process_cpu_seconds"]
    result = {
        "accounts": args.accounts, "events": args.events, "dates": len(dates),
        "every_days": every, "first": dates[0].isoformat(), "last": dates[-1].isoformat(),
        "backfill": backfill, "runs_seconds": [r["seconds"] for r in runs],
        "runs_total_seconds": total["seconds"], "runs_total_cpu_seconds": total["cpu_seconds"],
        "runs_in_process_seconds": durations(state_path(cron)),
        "backfill_in_process_seconds": durations(state_path(filled)),
        "ratio": ratio, "cpu_ratio": cpu_ratio, "check": check,
        "load_before": load_before, "load_after": load_after,
        "src_before": src_before, "src_after": src_fingerprint(), "context": where,
        "store_bytes_backfill": state_path(filled).stat().st_size,
        "store_bytes_runs": state_path(cron).stat().st_size,
    }
    print_backfill(result)
    return result


def print_backfill(r: dict[str, Any]) -> None:
    check = r["check"]
    n = r["dates"]
    print(f"\nmemberships: backfill {check['memberships_a']:,} rows, runs "
          f"{check['memberships_b']:,}; only in backfill {check['memberships_only_backfill']:,}"
          f", only in runs {check['memberships_only_runs']:,}")
    print(f"health rows: backfill {check['health_a']:,}, runs {check['health_b']:,}; only in "
          f"backfill {check['health_only_backfill']:,}, only in runs "
          f"{check['health_only_runs']:,}")
    for example in check.get("membership_examples", []):
        print("    e.g.", " | ".join(example))
    if "health_max_score_difference" in check:
        print(f"    health: {check['health_score_or_band_differs']:,} (date, account) pairs "
              f"differ; max |score difference| {check['health_max_score_difference']}, "
              f"bands differ {check['health_band_differs']:,}")
    print(f"history identical: {'yes' if check['identical'] else 'NO'} "
          f"({len(check['dates_a'])} / {len(check['dates_b'])} dates in history)")
    b = r["backfill"]
    print(f"(a) backfill:        {b['process_seconds']:7.1f} s wall "
          f"({b['process_seconds'] / n:.2f} s/date), {b['process_cpu_seconds']:7.1f} s CPU")
    print(f"(b) separate runs:   {r['runs_total_seconds']:7.1f} s wall "
          f"({r['runs_total_seconds'] / n:.2f} s/date), {r['runs_total_cpu_seconds']:7.1f} s CPU")
    print(f"separate / backfill = {r['ratio']:.2f} wall, {r['cpu_ratio']:.2f} CPU")


# --- part 2: the store after a year of daily dates -------------------------------------------


def table_sizes(store: Path, scratch: Path, tables: list[str]) -> dict[str, int]:
    """Bytes of each table copied alone into a new DuckDB file (no index), less the size of
    a file holding the same table empty; of each index (the copy with the index built, less
    the copy without); of the whole store copied into a new file (`compacted`: no free blocks
    left by updates and deletes); and of the store's free blocks."""
    import duckdb

    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)

    def copied(name: str, *statements: str) -> list[int]:
        """The copy's size after each statement."""
        target = scratch / f"{name}.duckdb"
        connection = duckdb.connect(str(target))
        connection.execute(f"ATTACH '{store}' AS s (READ_ONLY)")
        found = []
        for statement in statements:
            connection.execute(statement.format(target=target.stem))
            connection.execute("CHECKPOINT")
            found.append(target.stat().st_size)
        connection.close()
        target.unlink()
        return found

    sizes = {"compacted": copied("compacted", "COPY FROM DATABASE s TO {target}")[0]}
    for name in tables:
        empty = copied(f"{name}_empty",
                       f"CREATE TABLE {name} AS SELECT * FROM s.{name} LIMIT 0")[0]
        sizes[name] = copied(name, f"CREATE TABLE {name} AS SELECT * FROM s.{name}")[0] - empty
    connection = connect(("s", store))
    indexes = connection.execute("SELECT index_name, table_name, sql FROM duckdb_indexes() "
                                 "WHERE database_name = 's' ORDER BY 1").fetchall()
    block_size, free_blocks = connection.execute(
        "SELECT block_size, free_blocks FROM pragma_database_size() "
        "WHERE database_name = 's'").fetchone()
    connection.close()
    sizes["free_blocks"] = int(block_size) * int(free_blocks)
    for index, table, sql in indexes:
        without, with_index = copied(index, f"CREATE TABLE {table} AS SELECT * FROM s.{table}",
                                     sql)
        sizes[f"index {index}"] = with_index - without
    shutil.rmtree(scratch, ignore_errors=True)
    return sizes


def analyse_store(store: Path) -> dict[str, Any]:
    connection = connect(("s", store))
    found: dict[str, Any] = {}
    found["runs"] = one(connection, "SELECT count(*) FROM s.runs WHERE in_history")
    found["memberships"] = one(connection, "SELECT count(*) FROM s.memberships")
    found["health_rows"] = one(connection, "SELECT count(*) FROM s.health")
    found["quality_rows"] = one(connection, "SELECT count(*) FROM s.quality")
    found["by_level"] = {
        row[0]: {"rows": row[1], "open": row[2], "dimensions": row[3], "tags": row[4],
                 "entities": row[5]}
        for row in connection.execute(
            "SELECT level, count(*), count(*) FILTER (WHERE exited_at IS NULL), "
            "count(DISTINCT dimension) FILTER (WHERE dimension NOT LIKE 'tag:%'), "
            "count(DISTINCT dimension) FILTER (WHERE dimension LIKE 'tag:%'), "
            "count(DISTINCT entity_id) FROM s.memberships GROUP BY level ORDER BY level"
        ).fetchall()}
    # What one snapshot per run would hold: every interval counts once per run it spans.
    # Intervals start and end at run times, so a run's position turns spans into counts.
    found["snapshot_rows"], found["unmatched"] = connection.execute(
        "WITH r AS (SELECT as_of, row_number() OVER (ORDER BY as_of) - 1 AS i FROM s.runs "
        "WHERE in_history) SELECT sum(coalesce(x.i, (SELECT count(*) FROM r)) - e.i), "
        "count(*) FILTER (WHERE e.i IS NULL OR (m.exited_at IS NOT NULL AND x.i IS NULL)) "
        "FROM s.memberships m LEFT JOIN r e ON e.as_of = m.entered_at "
        "LEFT JOIN r x ON x.as_of = m.exited_at").fetchone()
    found["accounts_per_run"] = [row[0] for row in connection.execute(
        "SELECT count(*) FROM s.health h JOIN s.runs r ON r.run_id = h.run_id "
        "WHERE r.in_history GROUP BY r.as_of ORDER BY r.as_of").fetchall()]
    found["changes_per_run"] = [row[0] for row in connection.execute(
        "SELECT count(m.entered_at) FROM s.runs r LEFT JOIN s.memberships m "
        "ON m.entered_at = r.as_of WHERE r.in_history GROUP BY r.as_of ORDER BY r.as_of"
    ).fetchall()]
    found["tables"] = [row[0] for row in connection.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = 's' ORDER BY 1"
    ).fetchall()]
    found["durations"] = [float(row[0] or 0) for row in connection.execute(
        "SELECT duration_s FROM s.runs WHERE in_history ORDER BY as_of").fetchall()]
    connection.close()
    return found


def part_size(args: argparse.Namespace) -> dict[str, Any]:
    accounts, days = args.size_accounts, args.size_days
    events = args.size_events
    if events is None:
        events = 10_000_000 if shared_data(accounts, 10_000_000) else 5_000_000
    dates = daily(END, days, timedelta(days=1))
    print(f"\n== Store size: {days} daily dates {dates[0]:%Y-%m-%d} .. {dates[-1]:%Y-%m-%d}, "
          f"{accounts:,} accounts / {events:,} events ==")
    data = source_data(accounts, events)
    project = fresh_project(WORK / "store_size" / f"{size_name(accounts, events)}_d{days}", data)
    warm_cache(data)
    load_before, src_before, where = os.getloadavg()[0], src_fingerprint(), context()
    budget = args.size_budget_min * 60
    print(f"backfill in chunks of {args.chunk_days} dates (time budget {budget / 60:.0f} min; "
          "the store is measured after each chunk) ...", flush=True)
    filled = run_worker(project, dates, 1, args.chunk_days, budget, sizes=True)
    load_after, src_after = os.getloadavg()[0], src_fingerprint()
    store = state_path(project)
    found = analyse_store(store)
    found["sizes"] = table_sizes(store, WORK / "store_size" / "tables",
                                 [t for t in ("memberships", "health", "runs", "quality")
                                  if t in found["tables"]])
    measured = sum(c["dates"] for c in filled["chunks"])
    result = {"accounts": accounts, "events": events, "days": days, "measured_days": measured,
              "first": dates[0].isoformat(), "last_measured": filled["chunks"][-1]["last"],
              "backfill": filled, "store": found, "load_before": load_before,
              "load_after": load_after, "src_before": src_before, "src_after": src_after,
              "context": where, "store_bytes": filled["chunks"][-1]["store_bytes"]}
    result["extrapolation"] = extrapolate(result)
    print_size(result)
    return result


def extrapolate(r: dict[str, Any]) -> dict[str, Any] | None:
    """Linear in the dates, from the growth after the first chunk (which holds the initial
    snapshot of every membership) when there are two chunks or more."""
    chunks = r["backfill"]["chunks"]
    measured, days = r["measured_days"], r["days"]
    if measured >= days:
        return None
    if len(chunks) >= 2:
        first_days = chunks[0]["dates"]
        per_day = (chunks[-1]["store_bytes"] - chunks[0]["store_bytes"]) / (measured -
                                                                            first_days)
    else:
        per_day = chunks[-1]["store_bytes"] / measured
    store = r["store"]
    growth_rows = (store["memberships"] - store["changes_per_run"][0]) / max(measured - 1, 1)
    return {
        "store_bytes": chunks[-1]["store_bytes"] + per_day * (days - measured),
        "store_bytes_proportional": chunks[-1]["store_bytes"] * days / measured,
        "bytes_per_day": per_day,
        "memberships": store["memberships"] + growth_rows * (days - measured),
        "seconds": r["backfill"]["seconds"] * days / measured,
    }


def trends(b: dict[str, Any]) -> list[tuple[str, float, float]]:
    """Mean seconds per call of the main phases over the first and the last tenth of dates."""
    found = []
    for label in ("work steps", "record in the store"):
        each = b.get("phase_each", {}).get(label, [])
        if len(each) >= 2:
            tenth = max(len(each) // 10, 1)
            found.append((label, sum(each[:tenth]) / tenth, sum(each[-tenth:]) / tenth))
    return found


def print_size(r: dict[str, Any]) -> None:
    s, b = r["store"], r["backfill"]
    days, sizes = r["measured_days"], s["sizes"]
    accounts = r["accounts"]
    dims = s["by_level"].get("account", {}).get("dimensions", 0)
    print(f"\nmeasured {days} of {r['days']} dates"
          + ("" if days == r["days"] else " (time budget reached: a PREFIX)"))
    print(f"backfill: {b['seconds']:.0f} s in {len(b['chunks'])} call(s), "
          f"{b['seconds'] / days:.2f} s/date; CPU {b['cpu_seconds']:.0f} s; peak RSS "
          f"{b['peak_rss_mib']:.0f} MiB")
    print(f"state store after CHECKPOINT (Store.size_bytes): {r['store_bytes'] / MB:.1f} MB; "
          f"compacted copy {sizes['compacted'] / MB:.1f} MB")
    for name, size in sizes.items():
        if name != "compacted":
            print(f"    {name:<28} {size / MB:8.1f} MB")
    for label, mean_first, mean_last in trends(b):
        print(f"    {label}: {mean_first:.2f} s per date in the first tenth, "
              f"{mean_last:.2f} s in the last")
    print(f"memberships: {s['memberships']:,} rows; one snapshot per run would be "
          f"{s['snapshot_rows']:,} rows ({s['snapshot_rows'] / s['memberships']:.1f}x); "
          f"accounts x {dims} account dimensions x days = {accounts * dims * days:,}")
    print(f"health: {s['health_rows']:,} rows (accounts per run {s['accounts_per_run'][0]:,} "
          f"-> {s['accounts_per_run'][-1]:,})")
    print(f"bytes per account per day: {r['store_bytes'] / (accounts * days):.1f} "
          f"(health alone {sizes.get('health', 0) / (accounts * days):.1f}, memberships alone "
          f"{sizes.get('memberships', 0) / (accounts * days):.1f})")
    e = r["extrapolation"]
    if e:
        print(f"EXTRAPOLATED to {r['days']} dates (linear, from the growth after the first "
              f"chunk): store {e['store_bytes'] / MB:.0f} MB, memberships "
              f"{e['memberships']:,.0f} rows, backfill {e['seconds'] / 60:.0f} min")


# --- history.md ------------------------------------------------------------------------------


def package_dir() -> Path:
    """Where `retainer` is imported from (the checkout's src/, or a frozen copy)."""
    import importlib.util

    spec = importlib.util.find_spec("retainer")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations)))


def src_fingerprint(package: Path | None = None) -> str:
    """A hash of Retainer's code and demo template, to notice code that changed during a
    measurement (other people work in this tree)."""
    import hashlib

    package = package or package_dir()
    digest = hashlib.sha1()
    for path in sorted(package.rglob("*")):
        if path.is_file() and path.suffix in (".py", ".yml", ".yaml"):
            digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def freeze_src() -> str:
    """Run everything (this process and its children) on a copy of src/retainer as it is
    now, so that edits made meanwhile cannot reach one contender and not the other."""
    live = HERE.parent / "src" / "retainer"
    fingerprint = src_fingerprint(live)
    target = WORK / "frozen_src" / fingerprint
    if not (target / "retainer").is_dir():
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(live, target / "retainer",
                        ignore=shutil.ignore_patterns("__pycache__"))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(target), *filter(None, [os.environ.get("PYTHONPATH")])])
    sys.path.insert(0, str(target))
    print(f"code: a frozen copy of src/retainer ({fingerprint}) in "
          f"{target.relative_to(HERE.parent)}")
    return fingerprint


def context() -> dict[str, Any]:
    import duckdb

    def git(*command: str) -> str:
        done = subprocess.run(["git", "-C", str(HERE.parent), *command], capture_output=True,
                              text=True, check=False)
        return done.stdout

    dirty = [line[3:] for line in git("status", "--porcelain", "src").splitlines() if line]
    frozen = package_dir().parent.parent.name == "frozen_src"
    return {"commit": git("rev-parse", "--short", "HEAD").strip(), "dirty": dirty,
            "frozen": frozen,
            "cores": os.cpu_count(), "python": platform.python_version(),
            "duckdb": duckdb.__version__, "when": datetime.now().strftime("%Y-%m-%d %H:%M")}


def context_line(c: dict[str, Any], r: dict[str, Any]) -> str:
    dirty = (f", uncommitted changes in {', '.join(c['dirty'])}" if c["dirty"] else "")
    changed = (" **Retainer's source changed during this measurement** (another engineer's "
               "edits), so the contenders may have run different code."
               if r["src_before"] != r["src_after"] else "")
    frozen = " (run from a frozen copy of it)" if c.get("frozen") else ""
    return (f"Measured {c['when']} at commit `{c['commit']}`{dirty}{frozen}, source hash "
            f"`{r['src_before']}`; {c['cores']} cores, Python {c['python']}, DuckDB "
            f"{c['duckdb']}; load average {r['load_before']:.1f} before, "
            f"{r['load_after']:.1f} after.{changed}")


def markdown_backfill(r: dict[str, Any]) -> str:
    c = r["context"]
    check, b, n = r["check"], r["backfill"], r["dates"]
    inside = sum(r["runs_in_process_seconds"])
    lines = [
        f"{r['accounts']:,} accounts / {r['events']:,} events, {n} dates every "
        f"{r['every_days']} days from {r['first'][:10]} to {r['last'][:10]}. "
        + context_line(c, r),
        "",
        "| | wall s | s per date | CPU s | in-process s (runs.duration_s) |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| (a) one `backfill` call, one process | {b['process_seconds']:.1f} | "
        f"{b['process_seconds'] / n:.2f} | {b['process_cpu_seconds']:.1f} | "
        f"{sum(r['backfill_in_process_seconds']):.1f} |",
        f"| (b) {n} `retainer run` processes | {r['runs_total_seconds']:.1f} | "
        f"{r['runs_total_seconds'] / n:.2f} | {r['runs_total_cpu_seconds']:.1f} | "
        f"{inside:.1f} |",
        "",
        f"**separate / backfill = {r['ratio']:.2f}** wall-clock ({r['cpu_ratio']:.2f} CPU).",
        "",
        f"History identical: **{'yes' if check['identical'] else 'NO'}**: "
        f"{check['memberships_a']:,} membership intervals in each store "
        f"({check['memberships_only_backfill']:,} only in (a), "
        f"{check['memberships_only_runs']:,} only in (b)), {check['health_a']:,} health rows "
        f"({check['health_only_backfill']:,} only in (a), {check['health_only_runs']:,} only "
        f"in (b)), {len(check['dates_a'])} and {len(check['dates_b'])} dates in history. "
        f"State stores: {r['store_bytes_backfill'] / MB:.1f} MB (a), "
        f"{r['store_bytes_runs'] / MB:.1f} MB (b).",
        "",
        "Backfill phases (seconds in the worker, summed over all dates; best effort): "
        + ", ".join(f"{k} {v:.1f}" for k, v in sorted(b["phases"].items(),
                                                        key=lambda kv: -kv[1]))
        + f"; not attributed {b['seconds'] - sum(b['phases'].values()):.1f}. Peak RSS "
        f"{b['peak_rss_mib']:.0f} MiB.",
        "",
        "Separate runs, wall s per process: "
        + " ".join(f"{s:.1f}" for s in r["runs_seconds"]) + ".",
    ]
    return "\n".join(lines)


def markdown_size(r: dict[str, Any]) -> str:
    c = r["context"]
    s, b, e = r["store"], r["backfill"], r["extrapolation"]
    days, accounts, sizes = r["measured_days"], r["accounts"], s["sizes"]
    dims = s["by_level"].get("account", {}).get("dimensions", 0)
    prefix = days < r["days"]
    title = (f"**a prefix: {days} of {r['days']} daily dates** ({r['first'][:10]} to "
             f"{r['last_measured'][:10]}; the whole year would have taken too long)"
             if prefix else f"{days} daily dates ({r['first'][:10]} to "
                            f"{r['last_measured'][:10]})")
    durations = s["durations"]
    tenth = max(len(durations) // 10, 1)
    lines = [
        f"{accounts:,} accounts / {r['events']:,} events; {title}. "
        + context_line(c, r),
        "",
        "| measured | value |",
        "| --- | ---: |",
        f"| state store after `CHECKPOINT` (`Store.size_bytes()`) | "
        f"**{r['store_bytes'] / MB:.1f} MB** |",
        f"| the same store copied into a new file (no free blocks) | "
        f"{sizes['compacted'] / MB:.1f} MB |",
        *(f"| `{name}` table alone (copied into its own file, no index, less the empty file) | "
          f"{sizes[name] / MB:.1f} MB |" for name in ("health", "memberships", "runs",
                                                      "quality") if name in sizes),
        *(f"| index `{name[6:]}` (a copy with it built, less the copy without) | "
          f"{size / MB:.1f} MB |" for name, size in sizes.items() if name.startswith("index ")),
        f"| free blocks in the store (`pragma_database_size`) | "
        f"{sizes.get('free_blocks', 0) / MB:.1f} MB |",
        f"| `memberships` rows (intervals) | {s['memberships']:,} |",
        f"| rows one snapshot per run would need (every entity, dimension and held tag, "
        f"accounts and contacts) | {s['snapshot_rows']:,} "
        f"({s['snapshot_rows'] / max(s['memberships'], 1):.1f}x) |",
        f"| accounts x {dims} account dimensions x days | {accounts * dims * days:,} |",
        f"| `health` rows (one per account per run) | {s['health_rows']:,} |",
        f"| accounts in the first / last run | {s['accounts_per_run'][0]:,} / "
        f"{s['accounts_per_run'][-1]:,} |",
        f"| new intervals in the first run / per later run (mean) | "
        f"{s['changes_per_run'][0]:,} / "
        f"{sum(s['changes_per_run'][1:]) / max(len(s['changes_per_run']) - 1, 1):,.0f} |",
        f"| bytes per account per day (whole store) | "
        f"{r['store_bytes'] / (accounts * days):.1f} |",
        f"| of which health / memberships (tables alone) | "
        f"{sizes.get('health', 0) / (accounts * days):.1f} / "
        f"{sizes.get('memberships', 0) / (accounts * days):.1f} |",
        f"| backfill time | {b['seconds']:.0f} s ({b['seconds'] / 60:.1f} min) in "
        f"{len(b['chunks'])} call(s) |",
        f"| seconds per date: backfill time / dates; mean `runs.duration_s` of the first "
        f"{tenth} / last {tenth} dates | "
        f"{b['seconds'] / days:.2f} / {sum(durations[:tenth]) / tenth:.2f} / "
        f"{sum(durations[-tenth:]) / tenth:.2f} |",
        f"| peak RSS of the backfill process | {b['peak_rss_mib']:.0f} MiB |",
        *(f"| {label} per date, mean of the first / last tenth of dates | "
          f"{first:.2f} / {last:.2f} s |" for label, first, last in trends(b)),
    ]
    if e:
        lines += [
            "",
            f"**Extrapolated** (not measured) to all {r['days']} dates, linearly from the "
            f"store's growth after the first chunk ({e['bytes_per_day'] / MB:.2f} MB per "
            f"date): **about {e['store_bytes'] / MB:.0f} MB** "
            f"({e['store_bytes'] / (accounts * r['days']):.1f} bytes per account per day; "
            f"scaling the measured size by {r['days']}/{days} instead gives "
            f"{e['store_bytes_proportional'] / MB:.0f} MB), about "
            f"{e['memberships']:,.0f} membership rows, and a backfill of about "
            f"{e['seconds'] / 60:.0f} min.",
        ]
    lines += [
        "",
        "Growth, after each `backfill` call (dates done: store MB, call s): "
        + ", ".join(f"{sum(x['dates'] for x in b['chunks'][:i + 1])}: "
                    f"{ch['store_bytes'] / MB:.1f} MB, {ch['seconds']:.0f} s"
                    for i, ch in enumerate(b["chunks"])) + ".",
        "",
        "Backfill phases (s, summed over all dates; best effort): "
        + ", ".join(f"{k} {v:.0f}" for k, v in sorted(b["phases"].items(),
                                                      key=lambda kv: -kv[1]))
        + f"; not attributed {b['seconds'] - sum(b['phases'].values()):.0f}.",
    ]
    return "\n".join(lines)


TEMPLATE = """# History benchmark

<!-- results:backfill -->
<!-- /results:backfill -->

<!-- results:size -->
<!-- /results:size -->

<!-- results:backfill-quick -->
<!-- /results:backfill-quick -->

<!-- results:size-quick -->
<!-- /results:size-quick -->
"""


def warn_if_changed(r: dict[str, Any]) -> None:
    if r["src_before"] != r["src_after"]:
        print("WARNING: Retainer's source changed during this measurement")


def write_section(name: str, body: str) -> None:
    text = REPORT.read_text() if REPORT.exists() else TEMPLATE
    start, end = f"<!-- results:{name} -->", f"<!-- /results:{name} -->"
    if start not in text or end not in text:
        text = text.rstrip("\n") + f"\n\n{start}\n{end}\n"
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    REPORT.write_text(f"{head}{start}\n{body}\n{end}{tail}")
    print(f"wrote the {name} results into {REPORT.relative_to(HERE.parent)}")


# --- main --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        return worker(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="sanity run: 2k accounts / 200k events, 8 weekly dates, 30 daily "
                             "dates for the size part")
    parser.add_argument("--only", choices=("backfill", "size"), help="run one part only")
    part1 = parser.add_argument_group("part 1: backfill against separate runs")
    part1.add_argument("--accounts", type=int, default=20_000)
    part1.add_argument("--events", type=int, default=2_000_000)
    part1.add_argument("--dates", type=int, default=26)
    part1.add_argument("--every-days", type=int, default=7)
    part2 = parser.add_argument_group("part 2: the store after a year of daily dates")
    part2.add_argument("--size-accounts", type=int, default=100_000)
    part2.add_argument("--size-events", type=int, default=None,
                       help="default: 10M if benchmarks/data/a100000_e10000000 exists, else 5M")
    part2.add_argument("--size-days", type=int, default=365)
    part2.add_argument("--chunk-days", type=int, default=30,
                       help="dates per backfill call (the store is measured between calls)")
    part2.add_argument("--size-budget-min", type=float, default=40.0,
                       help="stop before a call that would take the backfill past this, "
                            "and extrapolate (0: no limit)")
    parser.add_argument("--freeze-src", action="store_true",
                        help="run on a copy of src/retainer taken at the start (for a tree "
                             "that others are editing meanwhile)")
    parser.add_argument("--no-write", action="store_true", help="do not update history.md")
    parser.add_argument("--json", type=Path, help="also write all figures here")
    args = parser.parse_args(argv)
    if args.quick:
        args.accounts, args.events, args.dates = 2_000, 200_000, 8
        args.size_accounts, args.size_events, args.size_days = 2_000, 200_000, 30
        args.chunk_days = 10
    for name in ("accounts", "events", "dates", "every_days", "size_accounts", "size_days",
                 "chunk_days"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")

    if args.freeze_src:
        freeze_src()
    suffix = "-quick" if args.quick else ""
    results: dict[str, Any] = {}
    status = 0
    if args.only in (None, "backfill"):
        results["backfill"] = part_backfill(args)
        warn_if_changed(results["backfill"])
        if not args.no_write:
            write_section("backfill" + suffix, markdown_backfill(results["backfill"]))
        if not results["backfill"]["check"]["identical"]:
            print("FAIL: the backfill and the separate runs recorded different histories")
            status = 1
    if args.only in (None, "size"):
        results["size"] = part_size(args)
        warn_if_changed(results["size"])
        if not args.no_write:
            write_section("size" + suffix, markdown_size(results["size"]))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    return status


if __name__ == "__main__":
    sys.exit(main())
