"""What the store needs from a database: statements, rows in, rows out, one transaction."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlglot
from sqlglot import exp

Statement = exp.Expr | str  # a tree, or fixed SQL text written in DuckDB's dialect


class Backend(ABC):
    dialect: str
    description: str
    # Whether the store lives in the engine's own connection (an attached DuckDB file), so a
    # run's rows can move into it with INSERT … SELECT instead of through Python.
    shares_engine: bool = False

    def render(self, statement: Statement) -> str:
        tree = sqlglot.parse_one(statement, read="duckdb") if isinstance(statement, str) \
            else statement
        return tree.sql(dialect=self.dialect)

    @abstractmethod
    def execute(self, statement: Statement, parameters: Sequence[Any] = ()) -> None: ...

    @abstractmethod
    def fetch(self, statement: Statement, parameters: Sequence[Any] = ()
              ) -> list[tuple[Any, ...]]: ...

    def fetch_arrow(self, statement: Statement) -> Any:
        """Rows as an Arrow table (for handing to an engine without a Python loop)."""
        import pyarrow as pa

        rows = self.fetch(statement)
        tree = sqlglot.parse_one(self.render(statement), read=self.dialect)
        assert isinstance(tree, exp.Query)
        names = [e.alias_or_name for e in tree.selects]
        return pa.table({name: [row[i] for row in rows] for i, name in enumerate(names)})

    def has_table(self, name: str) -> bool:
        rows = self.fetch("SELECT count(*) FROM information_schema.tables WHERE table_name = ? "
                          "AND table_schema = current_schema()", [name])
        return bool(rows[0][0])

    @abstractmethod
    def load(self, table: str, data: Any) -> None:
        """Create temporary table `table` holding the rows of an Arrow table."""

    @abstractmethod
    @contextmanager
    def transaction(self) -> Iterator[None]: ...

    @abstractmethod
    def size_bytes(self) -> int: ...

    @abstractmethod
    def close(self) -> None: ...
