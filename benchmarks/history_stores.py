"""Reading state stores: two stores' histories compared as multisets, and runs' durations."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from history_data import MEMBERSHIP_COLUMNS


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
