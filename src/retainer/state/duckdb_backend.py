"""The default store: one DuckDB file. DuckDB's file lock lets one writer in at a time."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import sqlglot
from sqlglot import exp

from retainer.errors import RetainerError
from retainer.state.backend import Backend, Statement
from retainer.state.schema import store_tables


def _unopenable(path: Path, exc: Exception) -> RetainerError:
    if "lock" in str(exc).lower():
        return RetainerError(f"the state store {path} is in use by another Retainer process",
                             hint="wait for it to finish, then try again")
    return RetainerError(f"cannot open the state store {path}: {exc}",
                         hint="is it a DuckDB database written by Retainer?")


class DuckDBBackend(Backend):
    dialect = "duckdb"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.description = str(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.connection = duckdb.connect(str(path))
        except duckdb.Error as exc:
            raise _unopenable(path, exc) from None
        self.connection.execute("SET TimeZone = 'UTC'")

    def execute(self, statement: Statement, parameters: Sequence[Any] = ()) -> None:
        self.connection.execute(self.render(statement), list(parameters))

    def fetch(self, statement: Statement, parameters: Sequence[Any] = ()
              ) -> list[tuple[Any, ...]]:
        return self.connection.execute(self.render(statement), list(parameters)).fetchall()

    def fetch_arrow(self, statement: Statement) -> Any:
        return self.connection.sql(self.render(statement)).to_arrow_table()

    def load(self, table: str, data: Any) -> None:
        self.connection.register("__incoming", data)
        try:
            create = exp.Create(this=exp.to_table(table), kind="TABLE", replace=True,
                                expression=exp.select(exp.Star()).from_("__incoming"),
                                properties=exp.Properties(expressions=[
                                    exp.TemporaryProperty()]))
            self.connection.execute(create.sql(self.dialect))
        finally:
            self.connection.unregister("__incoming")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.connection.execute("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            self.connection.execute("ROLLBACK")
            raise
        self.connection.execute("COMMIT")

    def size_bytes(self) -> int:
        self.connection.execute("CHECKPOINT")
        return self.path.stat().st_size

    def close(self) -> None:
        self.connection.close()


class AttachedDuckDBBackend(DuckDBBackend):
    """The same store file, attached to the engine's connection for the length of a run.

    Statements are rewritten to name the store's tables through the attached catalog, so the
    engine's temporary tables (a run's memberships) can be read directly.
    """

    shares_engine = True
    catalog = "retainer_state"

    def __init__(self, path: Path, connection: duckdb.DuckDBPyConnection) -> None:
        self.path = path
        self.description = str(path)
        self.connection = connection
        path.parent.mkdir(parents=True, exist_ok=True)
        attach = exp.Attach(this=exp.alias_(exp.Literal.string(str(path)), self.catalog))
        try:
            connection.execute(attach.sql(self.dialect))
        except duckdb.Error as exc:
            raise _unopenable(path, exc) from None

    def render(self, statement: Statement) -> str:
        tree = super().render(statement)
        parsed = sqlglot.parse_one(tree, read=self.dialect)
        for table in parsed.find_all(exp.Table):
            if table.name in store_tables() and not table.catalog:
                table.set("db", exp.to_identifier("main"))
                table.set("catalog", exp.to_identifier(self.catalog))
        return parsed.sql(self.dialect)

    def has_table(self, name: str) -> bool:
        rows = self.connection.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ? "
            "AND table_catalog = ?", [name, self.catalog]).fetchall()
        return bool(rows[0][0])

    def size_bytes(self) -> int:
        checkpoint = exp.Command(this="CHECKPOINT", expression=exp.to_identifier(self.catalog))
        self.connection.execute(checkpoint.sql(self.dialect))
        return self.path.stat().st_size

    def close(self) -> None:
        detach = exp.Detach(this=exp.to_identifier(self.catalog))
        self.connection.execute(detach.sql(self.dialect))
