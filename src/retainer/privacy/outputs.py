"""A forgotten person's rows in the published results and the exported files.

The output database is changed in one transaction; each exported file is written again from
the published table beside its final name and renamed over it, so a reader (or a kill) sees
the old file or the new one, never half of one.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sqlglot import exp

from retainer.engines.duckdb import STAGED_SUFFIX, DuckDBEngine
from retainer.errors import RetainerError

# Published tables that hold one row per contact, and the column naming the contact.
CONTACT_TABLES = (("contact_results", None), ("contact_reasons", "__key"))
PARTIAL_SUFFIX = ".forgetting"  # not `.next`: that belongs to a run's interrupted publish


def _matches(column: str, ids: Sequence[str]) -> exp.Expr:
    return exp.cast(exp.column(column, quoted=True), "VARCHAR").isin(
        *(exp.Literal.string(i) for i in ids))


def count_rows(engine: DuckDBEngine, key: str, ids: Sequence[str]) -> int:
    """How many contacts of the published results are among the ids."""
    if not ids or "contact_results" not in engine.tables():
        return 0
    query = exp.select(exp.Count(this=exp.Star())).from_("contact_results").where(
        _matches(key, ids))
    return int(engine.query(query)[0][0])


def remove_rows(engine: DuckDBEngine, key: str, ids: Sequence[str]) -> None:
    """Delete the ids' rows from every published contact table, in one transaction (the
    plan counted them: `count_rows`)."""
    if not ids:
        return
    tables = engine.tables()
    engine.connection.execute("BEGIN TRANSACTION")
    try:
        for table, column in CONTACT_TABLES:
            if table in tables:
                engine.query(exp.delete(table, where=_matches(column or key, ids)))
        # Outputs a failed or killed run staged and never published: nothing reads them,
        # and they may hold the person.
        for table in sorted(t for t in tables if STAGED_SUFFIX in t):
            engine.query(exp.Drop(tables=[exp.to_table(table)], kind="TABLE", exists=True))
    except BaseException:
        engine.connection.execute("ROLLBACK")
        raise
    engine.connection.execute("COMMIT")
    engine.connection.execute("CHECKPOINT")  # the deleted rows leave the write-ahead log


def exported_files(export_dir: Path) -> list[Path]:
    return [path for fmt in ("parquet", "csv")
            if (path := export_dir / f"contact_results.{fmt}").exists()]


def rewrite_exports(engine: DuckDBEngine, export_dir: Path) -> list[Path]:
    """Write the contact exports again from the published table (which no longer holds
    the person) and move each into place."""
    for stale in export_dir.glob(f"contact_results.*{PARTIAL_SUFFIX}"):
        stale.unlink()  # left by an attempt that was killed while writing
    files = exported_files(export_dir)
    if not files or "contact_results" not in engine.tables():
        return []
    for path in files:
        partial = path.with_name(path.name + PARTIAL_SUFFIX)
        engine.export(exp.select(exp.Star()).from_("contact_results"), partial,
                      path.suffix.removeprefix("."))
        try:
            partial.replace(path)
        except OSError as exc:
            raise RetainerError(f"cannot replace the export {path}: {exc.strerror}",
                                hint="check the export directory's permissions, then run "
                                     "'retainer forget' again") from None
    return files
