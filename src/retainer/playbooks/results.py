"""The latest published run, as playbooks read it: its as_of, and rows of the results.

Playbooks act on what the last `retainer run` published (the output database's
`account_results` and `contact_results`), never on a half-finished run.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlglot import exp

from retainer.compile.sql import category, col
from retainer.engines.duckdb import DuckDBEngine
from retainer.errors import RetainerError
from retainer.playbooks.conditions import ACCOUNT_PREFIX, Condition, ResultsScope
from retainer.project import Project, parse_as_of
from retainer.rulebook.expressions import Type

TABLES = {"account": "account_results", "contact": "contact_results"}


@dataclass(frozen=True)
class PublishedRun:
    as_of: datetime
    run_id: int | None
    rulebook_hash: str


class Results:
    """A read-only connection to the published results (close it)."""

    def __init__(self, project: Project) -> None:
        self.project = project
        if not project.output_database.exists():
            raise RetainerError("no published results to act on",
                                hint="run 'retainer run' first; playbooks act on the "
                                     "latest run")
        self.engine = DuckDBEngine(project.output_database, read_only=True)
        rulebook = project.rulebook
        self.keys = {"account": rulebook.key_column("account"),
                     "contact": rulebook.key_column("contact")}
        self.account_of_contact = rulebook.contact_account_column()
        tables = self.engine.tables()
        self.columns: dict[str, dict[str, Type]] = {
            level: self._describe(table) for level, table in TABLES.items() if table in tables}
        if "run_info" not in tables or "account" not in self.columns:
            self.close()
            raise RetainerError("no published results to act on",
                                hint="run 'retainer run' first")
        self.run = self._run_info()

    def _describe(self, table: str) -> dict[str, Type]:
        rows = self.engine.query(exp.Describe(this=exp.to_table(table)))
        return {str(r[0]): category(str(r[1])) for r in rows}

    def _run_info(self) -> PublishedRun:
        info = {str(k): json.loads(v) for k, v in self.engine.query(
            exp.select("key", "value").from_("run_info"))}
        if "as_of" not in info:
            raise RetainerError("the published results do not say their as_of",
                                hint="run 'retainer run' again")
        run_id = info.get("run_id")
        return PublishedRun(parse_as_of(str(info["as_of"])),
                            int(run_id) if run_id is not None else None,
                            str(info.get("rulebook_hash", "")))

    def scope(self, level: str) -> ResultsScope:
        if level not in self.columns:
            raise RetainerError(f"the published results have no {level} rows",
                                hint="a contact playbook needs contact results: a contacts "
                                     "source and something computed per contact")
        return ResultsScope(self.columns[level], level,
                            self.columns["account"] if level == "contact" else None)

    def relation(self, level: str) -> exp.Select:
        """The level's results; contact rows carry their account's columns as
        `account__<column>`."""
        table = exp.alias_(exp.to_table(TABLES[level]), "r")
        if level == "account":
            return exp.select(exp.Star()).from_(table)
        account = [exp.alias_(col(name, "a"), ACCOUNT_PREFIX + name)
                   for name in self.columns["account"]]
        return (exp.select(exp.Column(this=exp.Star(), table=exp.to_identifier("r")),
                           *account).from_(table)
                .join(exp.alias_(exp.to_table(TABLES["account"]), "a"), join_type="left",
                      on=col(self.account_of_contact, "r").eq(col(self.keys["account"], "a"))))

    def holding(self, level: str, condition: Condition) -> set[str]:
        """Ids of the entities for which `condition` holds."""
        key = col(self.keys[level])
        query = (exp.select(exp.cast(key, "VARCHAR")).from_(self.relation(level).subquery("x"))
                 .where(condition.bound.tree.copy()))
        return {str(r[0]) for r in self.engine.query(query) if r[0] is not None}

    def ids(self, level: str) -> set[str]:
        query = exp.select(exp.cast(col(self.keys[level]), "VARCHAR")).from_(TABLES[level])
        return {str(r[0]) for r in self.engine.query(query) if r[0] is not None}

    def in_segment(self, level: str, dimension: str, segment: str) -> set[str]:
        """Ids in a segment (or with a tag) in the published results."""
        if dimension.startswith("tag:"):
            name = dimension.removeprefix("tag:")
            if name not in self.columns.get(level, {}):
                return set()
            test: exp.Expr = exp.column(name).eq(exp.true())
        else:
            if dimension not in self.columns.get(level, {}):
                return set()
            test = exp.column(dimension).eq(exp.Literal.string(segment))
        query = exp.select(exp.cast(col(self.keys[level]), "VARCHAR")).from_(
            TABLES[level]).where(test)
        return {str(r[0]) for r in self.engine.query(query) if r[0] is not None}

    def rows(self, level: str, ids: Collection[str]) -> dict[str, dict[str, Any]]:
        """Full results rows of the given entities, by id (contact rows hold their account's
        columns too, unprefixed where the contact has no column of that name)."""
        if not ids:
            return {}
        import pyarrow as pa
        self.engine.connection.register("__ids", pa.table({"id": pa.array(sorted(set(ids)),
                                                                           pa.string())}))
        try:
            query = exp.select(exp.Star()).from_(self.relation(level).subquery("x")).where(
                exp.cast(col(self.keys[level]), "VARCHAR").isin(
                    query=exp.select("id").from_("__ids")))
            table = self.engine.arrow(query)
        finally:
            self.engine.connection.unregister("__ids")
        found: dict[str, dict[str, Any]] = {}
        for row in table.to_pylist():
            if level == "contact":
                merged = {k.removeprefix(ACCOUNT_PREFIX): v for k, v in row.items()
                          if k.startswith(ACCOUNT_PREFIX)}
                merged.update({k: v for k, v in row.items() if not k.startswith(
                    ACCOUNT_PREFIX)})
                row = {**merged, **{k: v for k, v in row.items()
                                    if k.startswith(ACCOUNT_PREFIX)}}
            found[str(row[self.keys[level]])] = row
        return found

    def close(self) -> None:
        self.engine.close()
