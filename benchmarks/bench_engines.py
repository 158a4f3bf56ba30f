"""The demo rulebook at ~1M events on each engine, timed relative to DuckDB in the same run.

    .venv/bin/python benchmarks/bench_engines.py [--accounts 10000] [--events 1000000]
        [--engines duckdb postgres spark] [--repeat 2]

Each engine runs `Project(dir).run(as_of)` on its own copy of one generated demo project (the
same data), history reset before every repeat; the best wall-clock time counts. Results are
checked to agree with DuckDB's (segments exactly, numbers within 1e-9 relative) before the
ratios are printed. PostgreSQL uses the local server (a fresh schema, dropped afterwards).
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path

import duckdb

HERE = Path(__file__).resolve().parent
AS_OF = datetime(2026, 12, 1)
POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


def settings(engine: str, schema: str) -> str:
    if engine == "postgres":
        return f"engine: postgres\npostgres: {{url: '{POSTGRES}', schema: {schema}}}\n"
    if engine == "spark":
        return "engine: spark\nspark: {master: 'local[2]'}\n"
    return ""


def results(root: Path) -> dict[str, list[tuple[object, ...]]]:
    with duckdb.connect(str(root / ".retainer" / "output.duckdb"), read_only=True) as db:
        return {table: db.sql(f"SELECT * FROM {table} ORDER BY 1").fetchall()
                for table in ("account_results", "contact_results")}


def same(left: object, right: object) -> bool:
    if isinstance(left, float) and isinstance(right, float):
        return math.isclose(left, right, rel_tol=1e-9, abs_tol=1e-9)
    return left == right


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--engines", nargs="+", default=["duckdb", "postgres", "spark"])
    parser.add_argument("--repeat", type=int, default=2)
    options = parser.parse_args(argv)
    from retainer.demo.generator import generate
    from retainer.project import Project
    from retainer.scaffold import create_demo_project

    base = HERE / "data" / f"engines_a{options.accounts}_e{options.events}"
    if not (base / "data" / "events.parquet").exists():
        shutil.rmtree(base, ignore_errors=True)
        create_demo_project(base, accounts=10, seed=7, end=AS_OF)
        shutil.rmtree(base / "data")
        generate(base / "data", accounts=options.accounts, events=options.events, seed=7,
                 end=AS_OF)
    timings: dict[str, float] = {}
    outputs: dict[str, dict[str, list[tuple[object, ...]]]] = {}
    for engine in options.engines:
        root = base.parent / f"{base.name}_{engine}"
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(base, root, ignore=shutil.ignore_patterns(".retainer"))
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        config = root / "retainer.yml"
        lines = [line for line in config.read_text().splitlines()
                 if not line.startswith("engine:")]
        config.write_text("\n".join(lines) + "\n" + settings(engine, schema))
        best = math.inf
        try:
            for _ in range(options.repeat):
                shutil.rmtree(root / ".retainer", ignore_errors=True)
                started = time.perf_counter()
                Project(root).run(AS_OF)
                best = min(best, time.perf_counter() - started)
        except Exception as exc:  # an engine that cannot run here is reported, not fatal
            print(f"{engine:9s} not measured: {str(exc).splitlines()[0]}")
            continue
        finally:
            if engine == "postgres":
                import psycopg
                from psycopg import sql
                with psycopg.connect(POSTGRES, autocommit=True) as connection:
                    connection.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                        sql.Identifier(schema)))
        timings[engine] = best
        outputs[engine] = results(root)
    reference = outputs.get("duckdb")
    failed = False
    print(f"{options.accounts:,} accounts, {options.events:,} events, best of {options.repeat}")
    for engine, seconds in timings.items():
        agree = "reference"
        if reference is not None and engine != "duckdb":
            bad = sum(not all(same(a, b) for a, b in zip(x, y, strict=True))
                      for table in reference
                      for x, y in zip(reference[table], outputs[engine][table], strict=False))
            bad += sum(abs(len(reference[t]) - len(outputs[engine][t])) for t in reference)
            agree = "agrees" if not bad else f"{bad} rows differ"
            failed |= bool(bad)
        ratio = seconds / timings["duckdb"] if "duckdb" in timings else float("nan")
        print(f"{engine:9s} {seconds:7.2f} s   {ratio:5.2f}x DuckDB   {agree}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
