"""Part 2: the state store after a year of daily dates — its size, what it is made of, and an
extrapolation when the time budget stops the backfill early."""

from __future__ import annotations

import argparse
import os
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

from history_data import (
    END,
    MB,
    WORK,
    daily,
    fresh_project,
    shared_data,
    size_name,
    source_data,
    state_path,
    warm_cache,
)
from history_provenance import context, src_fingerprint
from history_report import context_line
from history_stores import connect, one
from history_worker import run_worker


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
