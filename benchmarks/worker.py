"""One timed run of one implementation, in its own process (bench_run.py starts it).

    python benchmarks/worker.py {retainer,sql,pandas} PROJECT_DIR [--save DIR]

Prints one JSON line: {"seconds": wall clock of the computation, "cpu_seconds": CPU time of
all its threads meanwhile, "max_rss_mib": peak RSS of this process}. Imports happen before
the clocks start; writing results for the comparison (--save) happens after they stop.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

AS_OF = datetime(2026, 12, 1)
IMPLEMENTATIONS = ("retainer", "sql", "pandas")


def results_paths(save: Path, name: str) -> tuple[Path, Path]:
    """Where an implementation's account and contact results go for the comparison."""
    return save / f"{name}_accounts.parquet", save / f"{name}_contacts.parquet"


class Clock:
    """Wall-clock and CPU time (all threads of this process) of a `with` block."""

    def __enter__(self) -> Clock:
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._wall
        self.cpu_seconds = time.process_time() - self._cpu


def run_retainer(project: Path, save: Path | None) -> Clock:
    """A daily run: history holds the previous day's run (restored before every repeat), as
    in production, where each run records only what changed since the last one."""
    import duckdb

    from retainer.project import Project

    seed = project / ".retainer-seed"
    if not seed.exists():  # once per data set: the previous day's run, not timed
        shutil.rmtree(project / ".retainer", ignore_errors=True)
        Project(project).run(AS_OF - timedelta(days=1))
        shutil.copytree(project / ".retainer", seed)
    shutil.rmtree(project / ".retainer", ignore_errors=True)  # every repeat starts alike
    shutil.copytree(seed, project / ".retainer")
    with Clock() as clock:
        ran = Project(project)
        ran.run(AS_OF)
    if save is not None:
        accounts, contacts = results_paths(save, "retainer")
        with duckdb.connect(str(ran.output_database), read_only=True) as connection:
            connection.execute(f"COPY account_results TO '{accounts}' (FORMAT PARQUET)")
            connection.execute(f"COPY contact_results TO '{contacts}' (FORMAT PARQUET)")
    return clock


def run_sql(project: Path, save: Path | None) -> Clock:
    import hand_sql

    database = project / ".hand" / "hand.duckdb"  # results persisted, as Retainer's are
    shutil.rmtree(database.parent, ignore_errors=True)
    database.parent.mkdir()
    with Clock() as clock:
        connection = hand_sql.run(project / "data", AS_OF, database)
    if save is not None:
        hand_sql.save(connection, *results_paths(save, "sql"))
    connection.close()
    return clock


def run_pandas(project: Path, save: Path | None) -> Clock:
    import pandas_impl

    with Clock() as clock:
        accounts, contacts = pandas_impl.compute(project / "data", AS_OF)
    if save is not None:
        accounts_path, contacts_path = results_paths(save, "pandas")
        accounts.reset_index().to_parquet(accounts_path)
        contacts.reset_index().to_parquet(contacts_path)
    return clock


def peak_rss_mib() -> float:
    """This process's peak resident set size.

    VmHWM, not getrusage's ru_maxrss: on Linux the latter survives exec, so a child would
    report its parent's peak at fork time whenever that is the larger.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


RUNNERS: dict[str, Callable[[Path, Path | None], Clock]] = {
    "retainer": run_retainer, "sql": run_sql, "pandas": run_pandas,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("implementation", choices=IMPLEMENTATIONS)
    parser.add_argument("project", type=Path)
    parser.add_argument("--save", type=Path, help="write the results here as Parquet")
    args = parser.parse_args(argv)
    if args.save is not None:
        args.save.mkdir(parents=True, exist_ok=True)
    clock = RUNNERS[args.implementation](args.project.resolve(), args.save)
    print(json.dumps({"seconds": clock.seconds, "cpu_seconds": clock.cpu_seconds,
                      "max_rss_mib": peak_rss_mib()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
