"""PostgreSQL destination: one table per stream, upserted by key, one transaction per batch.

The table is created when missing: `key` (primary key), `entity_id`, `payload` (JSONB, the
whole record), `synced_at`, and one typed column per payload field so people can query it
directly (numbers are NUMERIC, so 12 stays 12 and 71.5 stays 71.5; yes/no is BOOLEAN; text
is TEXT; lists and mappings are JSONB). A field first seen later is added as a column then;
a field that is always empty gets no column until it has a value (`payload` has it anyway).
Identifiers are quoted by psycopg, never pasted into SQL text.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from retainer.destinations.base import DeliveryError, Destination, Record, require_driver
from retainer.destinations.retry import RetryPolicy
from retainer.errors import Location, first_line
from retainer.rulebook.destination_models import PostgresDestination as PostgresSettings
from retainer.rulebook.loader import Rulebook

if TYPE_CHECKING:
    import psycopg

RESERVED = ("key", "entity_id", "payload", "synced_at")


class PostgresDestination(Destination):
    kind = "postgres"
    batch_size = 1000

    def __init__(self, name: str, url: str, *, schema: str = "public", timeout: float = 30,
                 policy: RetryPolicy | None = None, batch: int = 1000) -> None:
        super().__init__(name)
        self.batch_size = batch
        from retainer.state.postgres_backend import split_schema
        self.dsn, url_schema = split_schema(url)
        self.schema = url_schema or schema
        self.timeout = timeout
        self.policy = policy or RetryPolicy(retries=3)
        self.connection: psycopg.Connection[Any] | None = None
        self.columns: dict[tuple[str, str], dict[str, str]] = {}  # table → column → type

    @classmethod
    def open(cls, name: str, settings: Any, rulebook: Rulebook,
             location: Location | None = None) -> PostgresDestination:
        assert isinstance(settings, PostgresSettings)
        require_driver("psycopg", name, "postgres", location)
        return cls(name, settings.url, schema=settings.schema_, timeout=settings.timeout,
                   policy=RetryPolicy(settings.retries, settings.backoff),
                   batch=settings.batch)

    def table(self, stream: str) -> tuple[str, str]:
        """`crm.account_segments` → ("crm", "account_segments"); a bare name is in `schema`."""
        schema, _, table = stream.rpartition(".")
        if not table or "." in schema:
            raise DeliveryError(f"'{stream}' is not a table name for destination "
                                f"'{self.name}'", retryable=False,
                                hint="write table or schema.table")
        return schema or self.schema, table

    def deliver(self, stream: str, records: Sequence[Record]) -> None:
        import psycopg

        if not records:
            return
        target = self.table(stream)
        latest = {r.key: r for r in records}  # the last word on a key wins, as in sequence
        last = ""
        for attempt in range(1, self.policy.attempts + 1):
            try:
                self._write(target, list(latest.values()))
                return
            except psycopg.OperationalError as exc:
                # Down, restarted, connection killed, lock or statement timeout: reconnect.
                self._reset()
                last = first_line(exc)
            except psycopg.Error as exc:
                self._reset()
                raise DeliveryError(
                    f"destination '{self.name}' refused the rows for "
                    f"{target[0]}.{target[1]}: {first_line(exc)}", retryable=False,
                    hint="the table may have been changed by hand (a column of another "
                         "type, a missing key); fix or drop it — the rows stay queued",
                    attempts=attempt) from None
            if attempt < self.policy.attempts:
                self.policy.wait(attempt)
        raise self.policy.gave_up(
            self.name, last, "is the database up and the table free of long locks? nothing "
            "is lost — the next sync sends these rows again")

    def close(self) -> None:
        self._reset()

    # --- one transaction -----------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        import psycopg

        if self.connection is None or self.connection.closed:
            # A lock held elsewhere fails the batch after `timeout`; a statement gets three
            # times as long, so a slow but working server is not mistaken for a stuck one.
            millis = int(self.timeout * 1000)
            self.connection = psycopg.connect(
                self.dsn, autocommit=True, connect_timeout=max(1, math.ceil(self.timeout)),
                options=f"-c lock_timeout={millis} -c statement_timeout={3 * millis}",
                application_name="retainer-sync")
        return self.connection

    def _reset(self) -> None:
        connection, self.connection = self.connection, None
        self.columns.clear()  # a rolled-back transaction may have added none of them
        if connection is not None and not connection.closed:
            with contextlib.suppress(Exception):
                connection.close()

    def _write(self, target: tuple[str, str], records: list[Record]) -> None:
        from psycopg import sql

        connection = self._connect()
        table = sql.Identifier(*target)
        upserts = [r for r in records if r.op == "upsert"]
        deletes = [r.key for r in records if r.op == "delete"]
        with connection.transaction():
            columns = self._ensure_table(connection, target, upserts)
            if deletes:
                connection.execute(sql.SQL("DELETE FROM {} WHERE key = ANY(%s)").format(table),
                                   [deletes])
            if upserts:
                names = ["key", "entity_id", "payload", *columns]
                insert = sql.SQL(
                    "INSERT INTO {table} ({names}, synced_at) VALUES ({values}, now()) "
                    "ON CONFLICT (key) DO UPDATE SET {updates}, synced_at = now()").format(
                    table=table, names=sql.SQL(", ").join(map(sql.Identifier, names)),
                    values=sql.SQL(", ").join(sql.Placeholder() * len(names)),
                    updates=sql.SQL(", ").join(
                        sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(n))
                        for n in names[1:]))
                with connection.cursor() as cursor:
                    cursor.executemany(insert, [_row(r, columns) for r in upserts])

    def _ensure_table(self, connection: psycopg.Connection[Any], target: tuple[str, str],
                      records: list[Record]) -> dict[str, str]:
        """The table's typed columns, creating the table and adding new fields' columns."""
        from psycopg import sql

        known = self.columns.get(target)
        if known is None:
            known = _existing_columns(connection, target)
        wanted: dict[str, str] = {}
        for record in records:
            for field, value in record.payload.items():
                if field in RESERVED:
                    raise DeliveryError(
                        f"record '{record.key}' has a payload field named '{field}', which "
                        f"the PostgreSQL destination '{self.name}' uses for itself",
                        retryable=False, hint="rename that column in the sync's 'columns'")
                kind = _column_type(value)
                if kind is not None and field not in known:
                    wanted.setdefault(field, kind)
        table = sql.Identifier(*target)
        if not known:  # a new table (or one without our shape, which the insert reports)
            connection.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                sql.Identifier(target[0])))
            connection.execute(sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (key TEXT PRIMARY KEY, entity_id TEXT NOT NULL, "
                "payload JSONB NOT NULL, synced_at TIMESTAMPTZ NOT NULL)").format(table))
        for field, kind in wanted.items():
            connection.execute(sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(
                table, sql.Identifier(field), sql.SQL(kind)))
        columns = {**{k: v for k, v in known.items() if k not in RESERVED}, **wanted}
        self.columns[target] = columns
        return columns


def _existing_columns(connection: psycopg.Connection[Any], target: tuple[str, str]
                      ) -> dict[str, str]:
    rows = connection.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
        list(target)).fetchall()
    return {str(name): str(kind).upper() for name, kind in rows}


def _column_type(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, (int, float)):
        return "NUMERIC"
    if isinstance(value, (dict, list, tuple)):
        return "JSONB"
    return "TEXT"


def _row(record: Record, columns: dict[str, str]) -> list[Any]:
    from psycopg.types.json import Jsonb

    values: list[Any] = [record.key, record.entity_id,
                         Jsonb(record.payload, dumps=lambda v: json.dumps(v, default=str))]
    for name, kind in columns.items():
        value = record.payload.get(name)
        if isinstance(value, float) and math.isnan(value):
            value = None
        if value is not None and kind == "JSONB":
            value = Jsonb(value, dumps=lambda v: json.dumps(v, default=str))
        values.append(value)
    return values
