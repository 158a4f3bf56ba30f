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
import sys
from pathlib import Path
from typing import Any

from history_backfill import markdown_backfill, part_backfill
from history_provenance import freeze_src
from history_report import warn_if_changed, write_section
from history_size import markdown_size, part_size
from history_worker import worker


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
