"""The production store: a PostgreSQL database (psycopg 3). An advisory lock keeps a second
writer out with a clear message instead of interleaving two runs' history."""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlglot import exp

from retainer.errors import RetainerError, first_line
from retainer.state.backend import Backend, Statement


def _postgres_type(arrow_type: Any) -> str:
    import pyarrow as pa
    checks = ((pa.types.is_floating, "DOUBLE PRECISION"), (pa.types.is_integer, "BIGINT"),
              (pa.types.is_boolean, "BOOLEAN"), (pa.types.is_timestamp, "TIMESTAMP"),
              (pa.types.is_list, "DOUBLE PRECISION[]"))
    return next((kind for check, kind in checks if check(arrow_type)), "TEXT")


def split_schema(url: str) -> tuple[str, str | None]:
    """`postgresql://…/db?schema=retainer` → (the URL without it, "retainer")."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    schema = query.pop("schema", None)
    return urlunsplit(parts._replace(query=urlencode(query))), schema


class PostgresBackend(Backend):
    dialect = "postgres"

    def __init__(self, url: str) -> None:
        try:
            import psycopg
        except ImportError:
            raise RetainerError("a PostgreSQL state store needs psycopg",
                                hint="pip install 'retainer[postgres]'") from None
        dsn, schema = split_schema(url)
        self.description = urlsplit(dsn)._replace(netloc=urlsplit(dsn).hostname or "").geturl()
        try:
            self.connection = psycopg.connect(dsn, autocommit=True)
        except psycopg.Error as exc:
            raise RetainerError(f"cannot connect to the state store: {exc}".strip(),
                                hint="check the state: URL in retainer.yml and that the "
                                     "server is running") from None
        self.schema = schema
        if schema:
            from psycopg import sql
            # A schema that exists already needs no right to create one.
            exists = self.connection.execute(
                "SELECT 1 FROM pg_namespace WHERE nspname = %s", [schema]).fetchone()
            try:
                if not exists:
                    self.connection.execute(sql.SQL("CREATE SCHEMA {}").format(
                        sql.Identifier(schema)))
            except psycopg.Error as exc:
                self.connection.close()
                raise RetainerError(f"cannot create the state store's schema '{schema}': "
                                    f"{first_line(exc)}",
                                    hint="create it as its owner, or let the store's role "
                                         "create schemas in the database") from None
            self.connection.execute(sql.SQL("SET search_path TO {}").format(
                sql.Identifier(schema)))
        self.connection.execute("SET TIME ZONE 'UTC'")
        key = zlib.crc32(f"retainer:{schema or 'public'}".encode())
        self._lock_key = key
        locked = self.connection.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()
        if not locked or not locked[0]:
            self.connection.close()
            raise RetainerError("the state store is in use by another Retainer process",
                                hint="wait for it to finish, then try again")

    # sqlglot renders `?` placeholders as psycopg's %s; store queries never use a literal %.
    def execute(self, statement: Statement, parameters: Sequence[Any] = ()) -> None:
        self.connection.execute(self.render(statement), list(parameters))

    def fetch(self, statement: Statement, parameters: Sequence[Any] = ()
              ) -> list[tuple[Any, ...]]:
        return list(self.connection.execute(self.render(statement),
                                            list(parameters)).fetchall())

    def load(self, table: str, data: Any) -> None:
        from psycopg import sql
        columns = [(field.name, _postgres_type(field.type)) for field in data.schema]
        target = exp.to_table(table)
        self.execute(exp.Drop(tables=[target], kind="TABLE", exists=True))
        definition = exp.Schema(this=target.copy(), expressions=[
            exp.ColumnDef(this=exp.to_identifier(name, quoted=True),
                          kind=exp.DataType.build(kind, dialect=self.dialect))
            for name, kind in columns])
        self.execute(exp.Create(this=definition, kind="TABLE", properties=exp.Properties(
            expressions=[exp.TemporaryProperty()])))
        copy_statement = sql.SQL("COPY {} FROM STDIN").format(sql.Identifier(table))
        with self.connection.cursor().copy(copy_statement) as copy:
            for row in data.to_pylist():
                copy.write_row([row[c] for c, _ in columns])

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self.connection.transaction():
            yield

    def size_bytes(self) -> int:
        rows = self.fetch("SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) "
                          "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                          "WHERE n.nspname = current_schema() AND c.relkind = 'r'")
        return int(rows[0][0])

    def close(self) -> None:
        # Unlock explicitly: the server frees a closed session's locks only once it notices
        # the disconnect, and the next run may already be asking for the lock.
        if not self.connection.closed:
            with contextlib.suppress(Exception):
                self.connection.execute("SELECT pg_advisory_unlock(%s)", [self._lock_key])
        self.connection.close()
