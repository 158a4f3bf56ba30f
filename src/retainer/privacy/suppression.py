"""Forgotten people stay forgotten: a run leaves out contacts whose tombstone matches.

After an erasure the person may still be in the sources (the upstream system has not
deleted them yet, or a later import brings them back). A run computes everything as usual,
then — before anything is recorded in history, exported or published — removes from its
staged contact outputs every contact whose salted id hash, or salted address hash, is a
tombstone. So they never reach history, results, exports, playbooks or syncs.

Account-level results still count their activity (an account's logins include theirs):
those are facts about the company, stored without the person's id, and leaving them out
would quietly move accounts between segments. The erasure's duty is met by removing
everything that is about the person; deleting them upstream is the source owner's part.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from retainer.compile.staging import src
from retainer.engines.duckdb import DuckDBEngine, staged
from retainer.errors import RetainerError
from retainer.privacy.subjects import contacts_source
from retainer.privacy.tombstones import store_salt
from retainer.rulebook.loader import Rulebook
from retainer.state import Store

HASHES = "__forgotten_hashes"
FORGOTTEN = "__forgotten_contacts"


def suppress_forgotten(engine: DuckDBEngine, store: Store, rulebook: Rulebook,
                       hashes: list[str], sources_attached: bool) -> list[str]:
    """Delete forgotten contacts from the staged `contact_results` and `contact_reasons`
    of `engine`; returns the ids of the contacts left out.

    `hashes` are the store's tombstones (`tombstones.forgotten_hashes`), read once by the
    run. `sources_attached` says whether `engine` itself reads the sources (`src_<name>`),
    so a returning address can be matched there; otherwise the contacts are read once more.
    """
    found = contacts_source(rulebook)
    if found is None:
        return []
    salt = store_salt(store) if hashes else None
    if salt is None or not _exists(engine, staged("contact_reasons")):
        return []
    import pyarrow as pa
    name, source = found
    connection = engine.connection
    table = pa.table({"hash": hashes})
    connection.register(HASHES, table)
    try:
        def forgotten(value: exp.Expr) -> exp.Expr:
            digest = exp.SHA2(this=exp.DPipe(this=exp.Literal.string(salt), expression=value),
                              length=exp.Literal.number(256))
            return digest.isin(query=exp.select("hash").from_(HASHES))

        key = exp.column("__key")
        ids: exp.Query = exp.select(exp.alias_(key, "id")).from_(
            staged("contact_reasons")).where(forgotten(key.copy()))
        if source.email is not None:
            address = exp.Lower(this=exp.Trim(this=exp.cast(
                exp.column(source.email, quoted=True), "VARCHAR")))
            contact = exp.cast(exp.column(str(source.key), quoted=True), "VARCHAR")
            by_email = exp.select(exp.alias_(contact, "id")).from_(src(name)).where(
                forgotten(address))
            if sources_attached:
                ids = exp.union(ids, by_email, distinct=True)
            else:
                ids = exp.union(ids, _read_elsewhere(rulebook, by_email, table),
                                distinct=True)
        engine.create_table(FORGOTTEN, ids)
        left_out = [str(row[0]) for row in engine.query(exp.select("id").from_(FORGOTTEN))]
        if left_out:
            key_column = exp.cast(exp.column(str(source.key), quoted=True), "VARCHAR")
            for table, column in ((staged("contact_results"), key_column), (
                    staged("contact_reasons"), exp.column("__key"))):
                engine.query(exp.delete(table, where=column.isin(
                    query=exp.select("id").from_(FORGOTTEN))))
        return left_out
    finally:
        connection.unregister(HASHES)


def _exists(engine: DuckDBEngine, table: str) -> bool:
    """Whether a table (temporary or not) exists in the engine's connection."""
    query = exp.select(exp.Count(this=exp.Star())).from_(
        exp.Anonymous(this="duckdb_tables")).where(
        exp.column("table_name").eq(exp.Literal.string(table)))
    return bool(engine.query(query)[0][0])


def _read_elsewhere(rulebook: Rulebook, query: exp.Select, hashes: Any) -> exp.Query:
    """The ids a query over the contacts source finds, read by a separate embedded engine
    (the run computed elsewhere), as literal rows."""
    from dataclasses import replace
    found = contacts_source(rulebook)
    assert found is not None
    reader = DuckDBEngine()
    try:
        try:
            reader.attach_sources(replace(rulebook, sources={found[0]: found[1]}))
        except RetainerError as exc:
            raise RetainerError("cannot read the contacts source to leave out forgotten "
                                f"people: {exc.problem.message}",
                                location=exc.problem.location,
                                hint="the run was not recorded; make the contacts source "
                                     "readable and run again") from None
        reader.connection.register(HASHES, hashes)
        ids = [str(row[0]) for row in reader.query(query)]
    finally:
        reader.close()
    values: list[exp.Expr] = [exp.Literal.string(i) for i in ids] or [
        exp.cast(exp.null(), "VARCHAR")]
    return exp.select(exp.alias_(exp.column("id"), "id")).from_(
        exp.Values(expressions=[exp.Tuple(expressions=[v]) for v in values],
                   alias=exp.TableAlias(this=exp.to_identifier("t"),
                                        columns=[exp.to_identifier("id")])))
