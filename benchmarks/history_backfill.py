"""Part 1: one backfill call against one `retainer run` process per date — times, and a check
that both state stores hold the same history."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from history_data import (
    END,
    MB,
    WORK,
    daily,
    fresh_project,
    size_name,
    source_data,
    state_path,
    warm_cache,
)
from history_provenance import context, src_fingerprint
from history_report import context_line
from history_stores import compare_stores, durations
from history_worker import child_clock, run_worker


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
