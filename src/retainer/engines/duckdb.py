"""The embedded engine: DuckDB, in process, over CSV/Parquet/JSON files or DuckDB tables.

Temporary relations hold the work of a run; `publish` replaces the output tables in one
transaction, so a failed or killed run leaves the previous results intact.
"""

from __future__ import annotations

import glob
import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
from sqlglot import exp

from retainer.compile.capabilities import DIALECTS
from retainer.compile.catalog import Catalog
from retainer.compile.plan import Plan
from retainer.compile.staging import src
from retainer.engines.base import Engine, Progress
from retainer.errors import DataError, EngineError, Location, RetainerError, first_line
from retainer.rulebook.loader import Rulebook
from retainer.rulebook.models import Source

DIALECT = "duckdb"
_PY_TYPES = ((bool, "BOOLEAN"), (int, "BIGINT"), (float, "DOUBLE"), (datetime, "TIMESTAMP"),
             (date, "DATE"))


STAGED_SUFFIX = "__next"


def staged(output: str) -> str:
    """The temporary table an output is computed into before it is published."""
    return output + STAGED_SUFFIX


class DuckDBEngine(Engine):
    capabilities = DIALECTS[DIALECT]

    def __init__(self, database: Path | None = None, *, read_only: bool = False) -> None:
        target = ":memory:"
        if database is not None:
            database.parent.mkdir(parents=True, exist_ok=True)
            target = str(database)
        try:
            self.connection = duckdb.connect(target, read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise RetainerError(
                    f"{database} is in use by another Retainer process",
                    hint="wait for the other run to finish, then try again") from None
            raise RetainerError(f"cannot open {database}: {exc}") from None
        self.connection.execute("SET TimeZone = 'UTC'")
        self._attached: set[str] = set()

    # --- sources -------------------------------------------------------------------------

    def attach_sources(self, rulebook: Rulebook) -> Catalog:
        columns: dict[str, dict[str, str]] = {}
        described: dict[str, str] = {}
        for name, source in rulebook.sources.items():
            relation, where = self._relation(rulebook, name, source)
            self._create_view(src(name), relation, rulebook, name, where)
            columns[name] = self._describe(src(name), rulebook, name, where)
            described[name] = where
        return Catalog(columns, described)

    def attach_rows(self, rulebook: Rulebook,
                    rows: Mapping[str, Sequence[Mapping[str, Any]]]) -> Catalog:
        schemas = self._fixture_schemas(rulebook, rows)
        for name, schema in schemas.items():
            table = exp.to_table(src(name))
            definition = exp.Schema(this=table, expressions=[
                exp.ColumnDef(this=exp.to_identifier(column, quoted=True),
                              kind=exp.DataType.build(kind, dialect=DIALECT))
                for column, kind in schema.items()])
            create = exp.Create(this=definition, kind="TABLE", replace=True,
                                properties=exp.Properties(expressions=[
                                    exp.TemporaryProperty()]))
            self.connection.execute(create.sql(DIALECT))
            items = rows.get(name) or []
            if not items:
                continue
            names = list(schema)
            insert = exp.insert(
                exp.values([tuple(exp.Placeholder() for _ in names)]),
                exp.Schema(this=table, expressions=[exp.to_identifier(c, quoted=True)
                                                    for c in names]))  # type: ignore[arg-type]
            try:
                self.connection.executemany(insert.sql(DIALECT),
                                            [[item.get(c) for c in names] for item in items])
            except duckdb.Error as exc:
                raise DataError(f"fixture rows for '{name}' do not fit its columns: {exc}",
                                hint="check the values' types against the source") from None
        return Catalog(schemas, {n: f"fixture rows for {n}" for n in schemas})

    def _fixture_schemas(self, rulebook: Rulebook,
                         rows: Mapping[str, Sequence[Mapping[str, Any]]]
                         ) -> dict[str, dict[str, str]]:
        """Real sources' column types where readable, else inferred from the fixture rows."""
        probe = DuckDBEngine()
        schemas: dict[str, dict[str, str]] = {}
        try:
            for name, source in rulebook.sources.items():
                try:
                    relation, where = probe._relation(rulebook, name, source)
                    probe._create_view(src(name), relation, rulebook, name, where)
                    schemas[name] = probe._describe(src(name), rulebook, name, where)
                except RetainerError:
                    schemas[name] = _inferred(source, rows.get(name) or [])
        finally:
            probe.close()
        for name, items in rows.items():
            if name not in schemas:
                raise DataError(f"fixture rows for unknown source '{name}'",
                                hint="sources: " + ", ".join(rulebook.sources))
            for item in items:
                for column in item:
                    if column not in schemas[name]:
                        raise DataError(f"fixture rows for '{name}' have column '{column}', "
                                        "which the source does not have",
                                        hint="columns: " + ", ".join(schemas[name]))
        return schemas

    def _relation(self, rulebook: Rulebook, name: str, source: Source
                  ) -> tuple[exp.Expr, str]:
        if source.table is not None:
            database = rulebook.config.database
            if database is None:
                raise DataError(f"source '{name}' reads table '{source.table}', but the "
                                "project names no database",
                                location=rulebook.origin("sources", name).at("table"),
                                hint="add 'database: path/to/warehouse.duckdb' to retainer.yml")
            path = rulebook.path(database)
            if not path.exists():
                raise DataError(f"database {path} does not exist",
                                hint="check 'database' in retainer.yml")
            if "srcdb" not in self._attached:
                attach = exp.Attach(this=exp.alias_(exp.Literal.string(str(path)), "srcdb"),
                                    expressions=[exp.AttachOption(this=exp.var("READ_ONLY"))])
                self.connection.execute(attach.sql(DIALECT))
                self._attached.add("srcdb")
            table = exp.to_table(source.table)
            table.set("catalog", exp.to_identifier("srcdb"))
            return table, f"table {source.table} of {database}"
        assert source.from_ is not None
        path = rulebook.path(source.from_)
        if not glob.glob(str(path)):
            raise DataError(f"source '{name}': no file matches {source.from_}",
                            location=rulebook.origin("sources", name).at("from"),
                            hint=f"looked for {path}; paths are relative to the project "
                                 "directory")
        try:
            fmt = source.file_format()
        except ValueError as exc:
            raise DataError(str(exc), location=rulebook.origin("sources", name).at("from")
                            ) from None
        reader = {"csv": "read_csv", "parquet": "read_parquet", "json": "read_json_auto"}[fmt]
        args: list[exp.Expr] = [exp.Literal.string(str(path))]
        if fmt == "csv":
            args.append(_option("header", exp.true()))
            args += self._sniffed(path)
        return exp.Table(this=exp.Anonymous(this=reader, expressions=args)), source.from_

    def _sniffed(self, path: Path) -> list[exp.Expr]:
        """The dialect and column types DuckDB's CSV sniffer finds in one file, as read_csv
        options with detection off.

        A view over `read_csv` with detection on sniffs the file again every time a
        statement binds it — creating it, describing it, and every step that reads it, some
        50-90 ms each for a large file. Sniffed once and spelt out, later binds are free
        and read the file exactly as detection did. A glob of several files (which the
        sniffer cannot take) or a file it cannot sniff keeps detection on.
        """
        sniff = exp.select(exp.Star()).from_(exp.Table(this=exp.Anonymous(
            this="sniff_csv", expressions=[exp.Literal.string(str(path)),
                                           _option("header", exp.true())])))
        try:
            found = self.connection.execute(sniff.sql(DIALECT))
            names = [column[0] for column in found.description or ()]
            row = found.fetchone()
        except duckdb.Error:
            return []
        if row is None:
            return []
        sniffed = dict(zip(names, row, strict=True))
        columns = exp.Struct(expressions=[
            exp.PropertyEQ(this=exp.Literal.string(column["name"]),
                           expression=exp.Literal.string(column["type"]))
            for column in sniffed["Columns"]])
        options = [_option("auto_detect", exp.false()), _option("columns", columns),
                   _option("skip", exp.Literal.number(int(sniffed["SkipRows"])))]
        for name, field in (("delim", "Delimiter"), ("quote", "Quote"), ("escape", "Escape"),
                            ("new_line", "NewLineDelimiter"), ("comment", "Comment"),
                            ("dateformat", "DateFormat"), ("timestampformat",
                                                           "TimestampFormat")):
            value = sniffed.get(field)
            if value is not None:  # the sniffer shows an empty setting as "(empty)"
                options.append(_option(name, exp.Literal.string(
                    "" if value == "(empty)" else str(value))))
        return options

    def _create_view(self, view: str, relation: exp.Expr, rulebook: Rulebook,
                     name: str, where: str) -> None:
        create = exp.Create(this=exp.to_table(view), kind="VIEW", replace=True,
                            expression=exp.select(exp.Star()).from_(relation),
                            properties=exp.Properties(expressions=[exp.TemporaryProperty()]))
        try:
            self.connection.execute(create.sql(DIALECT))
        except duckdb.Error as exc:
            raise _read_error(rulebook, name, where, exc) from None

    def _describe(self, view: str, rulebook: Rulebook, name: str, where: str
                  ) -> dict[str, str]:
        try:
            rows = self.connection.execute(
                exp.Describe(this=exp.to_table(view)).sql(DIALECT)).fetchall()
        except duckdb.Error as exc:
            raise _read_error(rulebook, name, where, exc) from None
        return {str(row[0]): str(row[1]) for row in rows}

    # --- running -------------------------------------------------------------------------

    def load_previous_state(self, rows: Any = None) -> None:
        """The stages history holds now, read by dimensions that are state machines: an
        Arrow table of (level, entity_id, dimension, segment, entered_at), or None."""
        self.connection.execute(
            "CREATE OR REPLACE TEMP TABLE previous_state (level VARCHAR, entity_id VARCHAR, "
            "dimension VARCHAR, segment VARCHAR, entered_at TIMESTAMP)")
        if rows is not None and rows.num_rows:
            self.connection.register("__previous", rows)
            try:
                self.connection.execute("INSERT INTO previous_state SELECT level, entity_id, "
                                        "dimension, segment, entered_at FROM __previous")
            finally:
                self.connection.unregister("__previous")

    def execute(self, plan: Plan, progress: Progress | None = None) -> None:
        if plan.state_machines and not self._has_previous_state():
            self.load_previous_state()
        steps = list(plan.work())
        for index, step in enumerate(steps):
            if progress:
                progress(step, index, len(steps))
            kind = "VIEW" if step.kind == "view" else "TABLE"
            create = exp.Create(this=exp.to_table(step.name), kind=kind, replace=True,
                                expression=step.query,
                                properties=exp.Properties(expressions=[
                                    exp.TemporaryProperty()]))
            self._run(create.sql(DIALECT), step.name)

    def publish(self, plan: Plan, metadata: Mapping[str, Any]) -> None:
        self.stage_outputs(plan)
        self.publish_staged(plan, metadata)

    def stage_outputs(self, plan: Plan, temporary: bool = True) -> None:
        """Compute the outputs as `<name>__next` tables, nothing published yet.

        Outputs about to be published are staged in the database itself, so publishing is a
        rename; a kill before it leaves only `__next` tables, replaced by the next run.
        """
        if temporary:
            self._drop_stale_staged([step.name for step in plan.outputs()])
        for step in plan.outputs():
            self.create_table(staged(step.name), step.query, temporary)

    def _drop_stale_staged(self, outputs: list[str]) -> None:
        """Outputs staged in memory would only hide those a failed run left in the file
        (which staging them in the file replaces): drop those first."""
        database = str(self.connection.execute("SELECT current_database()").fetchall()[0][0])
        for output in outputs:
            for name in (staged(output), staged(output) + "_persisted"):
                stale = exp.Table(this=exp.to_identifier(name), db=exp.to_identifier("main"),
                                  catalog=exp.to_identifier(database))
                self._run(exp.Drop(tables=[stale], kind="TABLE", exists=True).sql(DIALECT),
                          name)

    def publish_staged(self, plan: Plan, metadata: Mapping[str, Any]) -> None:
        """Replace the published outputs with the staged ones in one transaction: a failure
        or a kill leaves the previous outputs in place."""
        connection = self.connection
        for step in plan.outputs():  # temporary staged tables are copied in, not renamed
            if self._is_temporary(staged(step.name)):
                self.create_table(staged(step.name) + "_persisted",
                                  exp.select(exp.Star()).from_(staged(step.name)), False)
        connection.execute("BEGIN TRANSACTION")
        try:
            for step in plan.outputs():
                source = staged(step.name)
                if self._is_temporary(source):
                    source += "_persisted"
                self._run(exp.Drop(tables=[exp.to_table(step.name)], kind="TABLE",
                                   exists=True).sql(DIALECT), step.name)
                rename = exp.Alter(this=exp.to_table(source), kind="TABLE", actions=[
                    exp.AlterRename(this=exp.to_table(step.name))])
                self._run(rename.sql(DIALECT), step.name)
            connection.execute("CREATE OR REPLACE TABLE run_info (key VARCHAR, value VARCHAR)")
            connection.executemany("INSERT INTO run_info VALUES (?, ?)",
                                   [(k, json.dumps(v, default=str)) for k, v in
                                    {**metadata, "explain": plan.explain}.items()])
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    def staged_arrow(self, name: str) -> Any:
        return self.arrow(exp.select(exp.Star()).from_(staged(name)))

    def receive_staged(self, tables: Mapping[str, Any], temporary: bool = True) -> None:
        """Staged outputs computed by another engine become this engine's `<name>__next`."""
        if temporary:
            self._drop_stale_staged(list(tables))
        for name, table in tables.items():
            self.connection.register("__received", table)
            try:
                self.create_table(staged(name), exp.select(exp.Star()).from_("__received"),
                                  temporary)
            finally:
                self.connection.unregister("__received")

    def create_table(self, name: str, query: exp.Query, temporary: bool = True) -> None:
        if not temporary:  # a temporary table of that name would shadow the new one
            stale = exp.Table(this=exp.to_identifier(name), db=exp.to_identifier("main"),
                              catalog=exp.to_identifier("temp"))
            self._run(exp.Drop(tables=[stale], kind="TABLE", exists=True).sql(DIALECT), name)
        properties = exp.Properties(expressions=[exp.TemporaryProperty()]) if temporary \
            else None
        create = exp.Create(this=exp.to_table(name), kind="TABLE", replace=True,
                            expression=query, properties=properties)
        self._run(create.sql(DIALECT), name)

    def _is_temporary(self, name: str) -> bool:
        rows = self.connection.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = ?",
            [name]).fetchall()
        return bool(rows[0][0])

    def create_view(self, name: str, query: exp.Query) -> None:
        create = exp.Create(this=exp.to_table(name), kind="VIEW", replace=True,
                            expression=query, properties=exp.Properties(expressions=[
                                exp.TemporaryProperty()]))
        self._run(create.sql(DIALECT), name)

    def arrow(self, query: exp.Query) -> Any:
        """The rows of a query as an Arrow table."""
        try:
            return self.connection.sql(query.sql(DIALECT)).to_arrow_table()
        except duckdb.Error as exc:
            raise EngineError(f"query failed: {exc}") from None

    def materialize_sources(self, rulebook: Rulebook, names: Sequence[str],
                            formats: Sequence[str] = ("csv", "json")) -> None:
        """Read the named file sources of the given formats into memory once.

        Text formats are parsed (and their types sniffed) on every read, and a plan reads
        some sources more than once; a backfill reads every source once per date.
        """
        for name in names:
            source = rulebook.sources[name]
            if source.from_ is None or source.file_format() not in formats:
                continue
            view, cached = src(name), f"{src(name)}__cached"
            if cached in self._attached:
                continue
            temporary = exp.Properties(expressions=[exp.TemporaryProperty()])
            self._run(exp.Create(this=exp.to_table(cached), kind="TABLE", replace=True,
                                 expression=exp.select(exp.Star()).from_(view),
                                 properties=temporary).sql(DIALECT), f"reading {name}")
            self._run(exp.Create(this=exp.to_table(view), kind="VIEW", replace=True,
                                 expression=exp.select(exp.Star()).from_(cached),
                                 properties=temporary.copy()).sql(DIALECT), name)
            self._attached.add(cached)

    def export(self, query: exp.Query, path: Path, fmt: str) -> None:
        """Write a query's rows to a file (the caller renames it into place)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        options = [exp.CopyParameter(this=exp.var("FORMAT"), expression=exp.var(fmt.upper()))]
        copy = exp.Copy(this=query.subquery(), kind=False,
                        files=[exp.Literal.string(str(path))], params=options)
        self._run(copy.sql(DIALECT), f"export to {path.name}")

    def query(self, sql: Any, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        text = sql.sql(DIALECT) if isinstance(sql, exp.Expr) else str(sql)
        try:
            return self.connection.execute(text, list(parameters)).fetchall()
        except duckdb.Error as exc:
            raise EngineError(f"query failed: {exc}") from None

    def _has_previous_state(self) -> bool:
        rows = self.connection.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = "
            "'previous_state'").fetchall()
        return bool(rows[0][0])

    def tables(self) -> set[str]:
        rows = self.connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
        ).fetchall()
        return {str(r[0]) for r in rows}

    def _run(self, sql: str, what: str) -> None:
        try:
            self.connection.execute(sql)
        except duckdb.ConversionException as exc:
            raise DataError(f"while computing {what}: a value could not be converted: {exc}",
                            hint="a column holds mixed types; check the source file or cast "
                                 "the value in the rulebook") from None
        except duckdb.Error as exc:
            raise EngineError(f"while computing {what}: {exc}") from None

    def close(self) -> None:
        self.connection.close()


def _option(name: str, value: exp.Expr) -> exp.Expr:
    return exp.PropertyEQ(this=exp.to_identifier(name), expression=value)


def _read_error(rulebook: Rulebook, name: str, where: str, exc: Exception) -> DataError:
    first = first_line(exc)
    location: Location | None = None
    if ("sources", name) in rulebook.origins:
        location = rulebook.origin("sources", name).location
    return DataError(f"cannot read source '{name}' ({where}): {first}", location=location,
                     hint="check that the file is well-formed and its format matches "
                          "its extension (or set 'format')")


def _inferred(source: Source, items: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Column types of fixture rows for a source whose real data is not available."""
    schema: dict[str, str] = {}
    for item in items:
        for column, value in item.items():
            if value is not None and column not in schema:
                schema[column] = next((kind for cls, kind in _PY_TYPES
                                       if isinstance(value, cls)), "VARCHAR")
    for option in ("key", "account", "contact", "role", "alias"):
        column = getattr(source, option)
        if column is not None:
            schema.setdefault(column, "VARCHAR")
    if source.time is not None:
        schema.setdefault(source.time, "TIMESTAMP")
    for item in items:
        for column in item:
            schema.setdefault(column, "VARCHAR")
    return schema
