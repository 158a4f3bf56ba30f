"""PostgreSQL as the compute engine: the rulebook runs where the data lives.

* `table:` sources are tables or views of `source_schema` (or of the search path), read through
  views `src_<name>`; file sources are read by DuckDB — the reference engine's own readers, so
  columns get exactly the types a DuckDB run infers — and loaded with COPY.
* Text is compared byte by byte (COLLATE "C"), as DuckDB compares it.
* Work steps are UNLOGGED tables and views of the work schema, replaced on every run. Outputs
  are staged as `<name>__next`, then published as `<name>` in one transaction so that people can
  query the results in their database; the staged rows go to the local results engine as Arrow.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import tempfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import duckdb
import sqlglot
from sqlglot import exp
from sqlglot.tokenizer_core import TokenType

from retainer.compile.capabilities import DIALECTS
from retainer.compile.catalog import Catalog
from retainer.compile.plan import Plan
from retainer.compile.sql import category, col
from retainer.compile.staging import src
from retainer.engines.base import Engine, Progress
from retainer.engines.duckdb import DuckDBEngine, staged
from retainer.errors import (
    DataError,
    EngineError,
    RetainerError,
    did_you_mean,
    first_line,
)
from retainer.rulebook.loader import Rulebook
from retainer.rulebook.models import PostgresSettings, Source
from retainer.state.postgres_backend import split_schema

DIALECT = "postgres"
COLLATION = "C"  # byte order, as DuckDB compares text
OWN_RELATION = "Retainer"  # the comment on every relation the engine makes (and replaces)
PREVIOUS_STATE = {"level": "TEXT", "entity_id": "TEXT", "dimension": "TEXT", "segment": "TEXT",
                  "entered_at": "TIMESTAMP"}
# DuckDB types PostgreSQL lacks; everything else not plainly mappable is loaded as text.
_WIDE_TYPES = {"UTINYINT": "SMALLINT", "USMALLINT": "INT", "UINTEGER": "BIGINT",
               "UBIGINT": "NUMERIC(20)", "HUGEINT": "NUMERIC(39)", "UHUGEINT": "NUMERIC(39)",
               "TIMESTAMP_S": "TIMESTAMP", "TIMESTAMP_MS": "TIMESTAMP", "TIMESTAMP_NS": "TIMESTAMP"}
_T = exp.DataType.Type
_PLAIN_TYPES = {_T.BOOLEAN, _T.TINYINT, _T.SMALLINT, _T.INT, _T.BIGINT, _T.FLOAT, _T.DOUBLE,
                _T.DECIMAL, _T.DATE, _T.TIME, _T.TIMESTAMP, _T.TIMESTAMPNTZ, _T.TIMESTAMPTZ,
                _T.UUID, _T.INTERVAL}
_RELATION_KINDS = {"v": "VIEW", "m": "MATERIALIZED VIEW", "f": "FOREIGN TABLE"}


class PostgresEngine(Engine):
    capabilities = DIALECTS[DIALECT]

    def __init__(self, settings: PostgresSettings | None = None) -> None:
        settings = settings or PostgresSettings()
        try:
            import psycopg
        except ImportError:
            raise RetainerError("the postgres engine needs psycopg",
                                hint="pip install 'retainer[postgres]'") from None
        dsn, url_schema = split_schema(settings.url)
        explicit = "schema_" in settings.model_fields_set
        self.schema = settings.schema_ if explicit or not url_schema else url_schema
        self.source_schema = settings.source_schema
        info = psycopg.conninfo.conninfo_to_dict(dsn)
        self.server = (f"{info.get('host') or 'localhost'}:{info.get('port') or 5432}/"
                       f"{info.get('dbname') or info.get('user') or ''}")
        try:
            self.connection = psycopg.connect(dsn, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise RetainerError(f"cannot connect to PostgreSQL at {self.server}: "
                                f"{first_line(exc)}",
                                hint="check postgres.url in retainer.yml and that the server "
                                     "is running and accepts connections") from None
        self._previous_loaded = False
        self._loaded: set[str] = set()  # the copies of file sources this session loaded
        try:
            self._prepare()
        except BaseException:
            self.connection.close()
            raise

    @classmethod
    def for_rulebook(cls, rulebook: Rulebook) -> PostgresEngine:
        return cls(rulebook.config.postgres)

    def _prepare(self) -> None:
        """UTC, the work schema first on the search path, and one run per schema at a time."""
        from psycopg import sql
        self._run("SET TIME ZONE 'UTC'", "session setup")
        self._run("SET client_min_messages TO warning", "session setup")
        self._run(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema)),
                  f"schema {self.schema}")
        self._fetch("SELECT set_config('search_path', quote_ident(%s) || ', ' || "
                    "current_setting('search_path'), false)", [self.schema])
        key = zlib.crc32(f"retainer-engine:{self.schema}".encode())
        self._lock_key = key
        if not self._fetch("SELECT pg_try_advisory_lock(%s)", [key])[0][0]:
            raise RetainerError(f"schema {self.schema} of {self.server} is in use by another "
                                "Retainer run", hint="wait for it to finish, or give this "
                                "project its own postgres.schema")

    # --- sources -------------------------------------------------------------------------

    def attach_sources(self, rulebook: Rulebook) -> Catalog:
        described: dict[str, str] = {}
        files = {n: s for n, s in rulebook.sources.items() if s.from_ is not None}
        if files:
            reader = DuckDBEngine()
            try:
                read = reader.attach_sources(replace(rulebook, sources=files))
                for name in files:
                    self._load(reader, rulebook, name, read.described[name], read.columns[name])
                described.update(read.described)
            finally:
                reader.close()
        for name, source in rulebook.sources.items():
            if source.table is not None:
                described[name] = self._expose(rulebook, name, source)
        return Catalog({name: self._columns(src(name)) for name in rulebook.sources},
                       {name: described[name] for name in rulebook.sources})

    def attach_rows(self, rulebook: Rulebook,
                    rows: Mapping[str, Sequence[Mapping[str, Any]]]) -> Catalog:
        """Rows typed as DuckDB types them for a rule test (like the real files when they
        are readable); rows of a `table:` source take the types of that table."""
        reader = DuckDBEngine()
        try:
            read = reader.attach_rows(rulebook, rows)
            for name, source in rulebook.sources.items():
                found = self._find(source) if source.table is not None else None
                columns = None
                if found is not None:
                    columns = self._real_columns(*found)
                    _check_fixture_columns(name, columns, rows.get(name) or [])
                self._load(reader, rulebook, name, read.described[name], read.columns[name],
                           columns)
        finally:
            reader.close()
        return Catalog({name: self._columns(src(name)) for name in rulebook.sources},
                       read.described)

    def _load(self, reader: DuckDBEngine, rulebook: Rulebook, name: str, where: str,
              read: Mapping[str, str], columns: Mapping[str, str] | None = None) -> None:
        """Copy DuckDB's `src_<name>` (columns `read`) into a table of the same name (typed
        alike, or `columns`) through a CSV file that quotes every value, so that an empty
        text stays distinct from NULL."""
        from psycopg import sql
        columns = columns or {column: _postgres_type(kind) for column, kind in read.items()}
        query = exp.select(*(col(c) if c in read else exp.alias_(exp.null(), c, quoted=True)
                             for c in columns)).from_(src(name))
        self._create_table(src(name), columns)
        self._loaded.add(src(name))
        with tempfile.TemporaryDirectory(prefix="retainer-") as directory:
            path = Path(directory) / "rows.csv"
            copy = exp.Copy(this=query.subquery(), kind=False,
                            files=[exp.Literal.string(str(path))], params=[
                                exp.CopyParameter(this=exp.var("FORMAT"),
                                                  expression=exp.var("CSV")),
                                exp.CopyParameter(this=exp.var("HEADER"),
                                                  expression=exp.false()),
                                exp.CopyParameter(this=exp.var("FORCE_QUOTE"),
                                                  expression=exp.Star())])
            try:
                reader.connection.execute(copy.sql("duckdb"))
            except duckdb.Error as exc:
                raise DataError(f"cannot read source '{name}' ({where}): {first_line(exc)}",
                                location=rulebook.source_location(name),
                                hint="check that the file is well-formed and its format "
                                     "matches its extension (or set 'format')") from None
            statement = sql.SQL("COPY {} FROM STDIN (FORMAT csv)").format(
                sql.Identifier(src(name)))
            self._copy(statement, path, rulebook, name, where)

    def _copy(self, statement: Any, path: Path, rulebook: Rulebook, name: str,
              where: str) -> None:
        import psycopg
        try:
            with self.connection.cursor() as cursor, cursor.copy(statement) as copy, \
                    path.open("rb") as rows:
                while chunk := rows.read(1 << 20):
                    copy.write(chunk)
        except psycopg.DataError as exc:
            # COPY's context counts the lines of the copied rows: line 1 is the first row.
            found = re.search(r"line (\d+)(, column (.+?))?(:|$)", exc.diag.context or "")
            at = ""
            if found:
                at = f" (row {found[1]}" + (f", column {found[3]}" if found[3] else "") + ")"
            raise DataError(f"PostgreSQL cannot store a value of source '{name}' ({where}): "
                            f"{first_line(exc)}{at}", location=rulebook.source_location(name),
                            hint="text cannot contain NUL characters and dates must fall "
                                 "within PostgreSQL's range; fix the value at the source"
                            ) from None
        except psycopg.Error as exc:
            raise EngineError(f"while loading source '{name}': {first_line(exc)}") from None

    def _expose(self, rulebook: Rulebook, name: str, source: Source) -> str:
        """A view `src_<name>` over an existing table, its text compared byte by byte."""
        found = self._find(source)
        where = f"schema {self.source_schema}" if self.source_schema else (
            f"the search path of {self.server}")
        if found is None:
            existing = self._tables()
            hint = did_you_mean(str(source.table), existing) or ""
            raise DataError(f"source '{name}': table {source.table} does not exist in {where}",
                            location=rulebook.origin("sources", name).at("table"),
                            hint=(hint + " tables there: " + ", ".join(existing[:30])).strip()
                            if existing else "there are no tables there; set "
                            "postgres.source_schema to the schema that holds it")
        schema, table = found
        columns = self._real_columns(schema, table)
        select = exp.select(*(
            exp.alias_(exp.Collate(this=col(c), expression=exp.to_identifier(
                COLLATION, quoted=True)), c, quoted=True)
            if category(kind) == "text" else exp.column(c, quoted=True)
            for c, kind in columns.items()))
        select = select.from_(exp.table_(table, db=schema, quoted=True))
        self._replace(src(name), "view", select)
        return f"table {schema}.{table} of {self.server}"

    def _find(self, source: Source) -> tuple[str, str] | None:
        table = exp.to_table(str(source.table), dialect=DIALECT)
        if not table.db and self.source_schema:
            table.set("db", exp.to_identifier(self.source_schema, quoted=True))
        import psycopg
        try:
            rows = self._fetch("SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace "
                               "n ON n.oid = c.relnamespace WHERE c.oid = to_regclass(%s)",
                               [table.sql(DIALECT)])
        except (psycopg.Error, EngineError):
            return None
        return (str(rows[0][0]), str(rows[0][1])) if rows else None

    def _tables(self) -> list[str]:
        """Tables a `table:` source may name: those of source_schema, or of the search path;
        never the engine's own relations."""
        rows = self._fetch("SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = "
                           "c.relnamespace WHERE c.relkind IN ('r', 'v', 'm', 'f', 'p') AND "
                           "n.nspname = ANY(coalesce(%s::name[], current_schemas(false))) AND "
                           "coalesce(obj_description(c.oid, 'pg_class'), '') NOT LIKE %s "
                           "ORDER BY 1", [[self.source_schema] if self.source_schema else None,
                                          f"{OWN_RELATION}%"])
        return [str(row[0]) for row in rows]

    def _real_columns(self, schema: str, table: str) -> dict[str, str]:
        rows = self._fetch("SELECT column_name, data_type FROM information_schema.columns "
                           "WHERE table_schema = %s AND table_name = %s ORDER BY "
                           "ordinal_position", [schema, table])
        return {str(name): _engine_type(str(kind)) for name, kind in rows}

    def _columns(self, relation: str) -> dict[str, str]:
        return self._real_columns(self.schema, relation)

    # --- running -------------------------------------------------------------------------

    def load_previous_state(self, rows: Any = None) -> None:
        from psycopg import sql
        self._create_table("previous_state", PREVIOUS_STATE)
        self._previous_loaded = True
        if rows is None or not rows.num_rows:
            return
        statement = sql.SQL("COPY previous_state ({}) FROM STDIN").format(
            sql.SQL(", ").join(sql.Identifier(c) for c in PREVIOUS_STATE))
        columns = [rows.column(name).to_pylist() for name in PREVIOUS_STATE]
        with self.connection.cursor() as cursor, cursor.copy(statement) as copy:
            for row in zip(*columns, strict=True):
                copy.write_row(row)

    def execute(self, plan: Plan, progress: Progress | None = None) -> None:
        if plan.state_machines and not self._previous_loaded:
            self.load_previous_state()
        steps = list(plan.work())
        for index, step in enumerate(steps):
            if progress:
                progress(step, index, len(steps))
            self._replace(step.name, step.kind, step.query)

    def stage_outputs(self, plan: Plan, temporary: bool = True) -> None:
        """Compute the outputs as `<name>__next`, then replace the `<name>` tables of the work
        schema with them in one transaction, so people can query the results where their
        data is (readers see the old results or the new, never a mix). The local results
        engine publishes its own copy; `temporary` does not apply: staging is always in the
        work schema."""
        del temporary
        outputs = [step.name for step in plan.outputs()]
        for step in plan.outputs():
            self._replace(staged(step.name), "table", step.query)
        with self.connection.transaction():
            for name in outputs:
                self._publish(name)

    def _publish(self, name: str) -> None:
        """Fill the results table `name` with the staged rows. While its columns stay the
        same it is the same table, so views people built on it keep working."""
        rows = exp.select(exp.Star()).from_(staged(name))
        if self._kind(name) == "TABLE" and list(self._columns(name).items()) == list(
                self._columns(staged(name)).items()):
            self._run(exp.delete(name).sql(DIALECT), name)
            self._run(exp.insert(rows, name).sql(DIALECT), name)
            return
        try:
            self._drop(name, cascade=False)
        except EngineError as exc:
            raise EngineError(exc.problem.message, hint=f"the rulebook changed the columns of "
                              f"{name}, and something of yours depends on it (a view?): drop "
                              "it, run again, then create it anew") from None
        self._run(exp.Create(this=exp.to_table(name), kind="TABLE", expression=rows
                             ).sql(DIALECT), name)
        self._comment(name, "TABLE", "results")

    def staged_arrow(self, name: str) -> Any:
        return self._arrow(staged(name))

    def _arrow(self, relation: str) -> Any:
        """The rows of a relation of the work schema as an Arrow table, types kept."""
        import pyarrow as pa
        from psycopg.postgres import types
        with self.connection.cursor() as cursor:
            try:
                cursor.execute(exp.select(exp.Star()).from_(relation).sql(DIALECT))
            except Exception as exc:
                raise EngineError(f"cannot read {relation}: {first_line(exc)}") from None
            description = cursor.description or []
            rows = cursor.fetchall()
        columns = list(zip(*rows, strict=True)) if rows else [() for _ in description]
        arrays = []
        for column, values in zip(description, columns, strict=True):
            info = types.get(column.type_code)
            arrays.append(_arrow_array(list(values), info.name if info else ""))
        return pa.Table.from_arrays(arrays, names=[column.name for column in description])

    def query(self, sql: exp.Expr, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The rows of a query, its `?` placeholders bound in the order they are written,
        as DuckDB binds them, through the server's `$1, $2 …` (a raw cursor: a `%` in a name
        or a literal is only text). Values are typed as DuckDB gives them (the session's zone
        is UTC, as DuckDB's is); NUMERIC as the results have it (`_numbers`)."""
        import psycopg
        from psycopg.postgres import types
        statement, bound = _numbered(sql, parameters)
        try:
            with psycopg.RawCursor(self.connection) as cursor:
                cursor.execute(statement, bound)
                description = cursor.description or []
                rows = cursor.fetchall() if cursor.description else []
        except psycopg.Error as exc:
            raise EngineError(f"query failed: {first_line(exc)}") from None
        if not rows:
            return []
        columns = []
        for column, values in zip(description, zip(*rows, strict=True), strict=True):
            info = types.get(column.type_code)
            columns.append(_numbers(list(values)) if info and info.name == "numeric"
                           else list(values))
        return list(zip(*columns, strict=True))

    def forget_contacts(self, ids: Sequence[str], key: str) -> int:
        """The work schema keeps the latest results for people to query, and a run's work
        (copies of the file sources it loaded, staged rows): the contacts' result rows are
        deleted and the work dropped — the next run makes it again, and leaves forgotten
        people out of its results."""
        from psycopg import sql
        if not ids:
            return 0
        wanted = [exp.Literal.string(i) for i in ids]
        deleted = 0
        with self.connection.transaction():
            for table, column in (("contact_results", key), ("contact_reasons", "__key")):
                if self._kind(table) != "TABLE":
                    continue
                delete = exp.delete(table, where=exp.cast(
                    exp.column(column, quoted=True), "TEXT").isin(*wanted))
                with self.connection.cursor() as cursor:
                    cursor.execute(delete.sql(DIALECT))
                    deleted += cursor.rowcount
            # Only relations the engine made as a run's work (its comment says so): never
            # the results, never one of the user's.
            work = self._fetch(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = "
                "c.relnamespace WHERE n.nspname = %s AND c.relkind = 'r' AND "
                "starts_with(coalesce(obj_description(c.oid, 'pg_class'), ''), %s)",
                [self.schema, f"{OWN_RELATION}: work of a run"])
            for (name,) in work:
                self.connection.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(
                    sql.Identifier(self.schema, str(name))))
        return deleted

    def release_sources(self) -> None:
        """The copies of file sources loaded to read them (for an act, a validation) hold
        the sources' people: they go when the reading is done, not at the next run."""
        for name in sorted(self._loaded):
            self._drop(name)
        self._loaded.clear()

    def close(self) -> None:
        # Unlock explicitly: the server releases a closed session's locks only once it has
        # noticed the disconnect, and the next run may already be asking.
        if not self.connection.closed and getattr(self, "_lock_key", None) is not None:
            with contextlib.suppress(Exception):
                self.connection.execute("SELECT pg_advisory_unlock(%s)", [self._lock_key])
        self.connection.close()

    # --- statements ----------------------------------------------------------------------

    def _replace(self, name: str, kind: str, query: exp.Query) -> None:
        if self.capabilities.materialize_layers and query.find(exp.CTE):
            # The compiler builds the layers (compile/entity.py); they must not be inlined.
            query = query.copy()
            for cte in query.find_all(exp.CTE):
                cte.set("materialized", True)
        self._drop(name)
        properties = None if kind == "view" else exp.Properties(
            expressions=[exp.UnloggedProperty()])
        create = exp.Create(this=exp.to_table(name), kind="VIEW" if kind == "view" else "TABLE",
                            expression=query, properties=properties)
        self._run(create.sql(DIALECT), name)
        self._comment(name, "VIEW" if kind == "view" else "TABLE", "work of a run")

    def _create_table(self, name: str, columns: Mapping[str, str]) -> None:
        self._drop(name)
        definition = exp.Schema(this=exp.to_table(name), expressions=[
            exp.ColumnDef(this=exp.to_identifier(column, quoted=True),
                          kind=exp.DataType.build(kind, dialect=DIALECT),
                          constraints=[exp.ColumnConstraint(kind=exp.CollateColumnConstraint(
                              this=exp.to_identifier(COLLATION, quoted=True)))]
                          if category(kind) == "text" else [])
            for column, kind in columns.items()])
        create = exp.Create(this=definition, kind="TABLE", properties=exp.Properties(
            expressions=[exp.UnloggedProperty()]))
        self._run(create.sql(DIALECT), name)
        self._comment(name, "TABLE", "work of a run")

    def _comment(self, name: str, kind: str, what: str) -> None:
        """Mark a relation as the engine's: it is replaced by every run."""
        from psycopg import sql
        self._run(sql.SQL("COMMENT ON {} {} IS {}").format(
            sql.SQL(kind), sql.Identifier(name),
            sql.Literal(f"{OWN_RELATION}: {what}, replaced by every run")), name)

    def _kind(self, name: str) -> str | None:
        """What a relation of the work schema is (TABLE, VIEW …), or None."""
        rows = self._fetch("SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = "
                           "c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
                           [self.schema, name])
        return _RELATION_KINDS.get(str(rows[0][0]), "TABLE") if rows else None

    def _drop(self, name: str, cascade: bool = True) -> None:
        """Drop a relation of the work schema (never one of another schema), whatever it is,
        with the work that depends on it: the run recreates that."""
        from psycopg import sql
        kind = self._kind(name)
        if kind is not None:
            self._run(sql.SQL("DROP {} {}.{}{}").format(
                sql.SQL(kind), sql.Identifier(self.schema), sql.Identifier(name),
                sql.SQL(" CASCADE" if cascade else "")), name)

    def _fetch(self, statement: Any, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        import psycopg
        try:
            cursor = self.connection.execute(statement, list(parameters))
            return cursor.fetchall() if cursor.description else []
        except psycopg.Error as exc:
            raise EngineError(f"query failed: {first_line(exc)}") from None

    def _run(self, statement: Any, what: str) -> None:
        import psycopg
        try:
            self.connection.execute(statement)
        except psycopg.DataError as exc:
            raise DataError(f"while computing {what}: a value could not be converted: "
                            f"{first_line(exc)}", hint="a column holds mixed types; check "
                            "the source or cast the value in the rulebook") from None
        except psycopg.OperationalError as exc:
            raise EngineError(f"while computing {what}: {first_line(exc)}",
                              hint=f"the connection to {self.server} failed; check the "
                                   "server and run again") from None
        except psycopg.Error as exc:
            raise EngineError(f"while computing {what}: {first_line(exc)}") from None


def _postgres_type(duckdb_type: str) -> str:
    """The PostgreSQL column type for a DuckDB column type; text where there is none."""
    kind = duckdb_type.upper()
    if kind in _WIDE_TYPES:
        return _WIDE_TYPES[kind]
    try:
        built = exp.DataType.build(kind, dialect="duckdb")
    except Exception:
        return "TEXT"
    return built.sql(DIALECT) if built.this in _PLAIN_TYPES else "TEXT"


def _engine_type(data_type: str) -> str:
    """information_schema's type name as the compiler reads types (`timestamp with time
    zone` → TIMESTAMPTZ, `character varying` → VARCHAR)."""
    try:
        return exp.DataType.build(data_type, dialect=DIALECT).sql(DIALECT)
    except Exception:
        return data_type.upper()


_ARROW_TYPES = {"bool": "bool_", "int2": "int16", "int4": "int32", "int8": "int64",
                "float4": "float32", "float8": "float64", "text": "string",
                "varchar": "string", "bpchar": "string", "name": "string", "date": "date32"}


def _arrow_array(values: list[Any], type_name: str) -> Any:
    """One column as Arrow. NUMERIC (sums of integers, EXTRACT) becomes integers when every
    value is whole, as DuckDB's results are, else doubles."""
    import pyarrow as pa
    if type_name in _ARROW_TYPES:
        return pa.array(values, type=getattr(pa, _ARROW_TYPES[type_name])())
    if type_name in ("timestamp", "timestamptz"):
        return pa.array(values, type=pa.timestamp(
            "us", tz="UTC" if type_name == "timestamptz" else None))
    if type_name == "numeric":
        whole = _whole(values)
        return pa.array(_numbers(values, whole), type=pa.int64() if whole else pa.float64())
    return pa.array([None if v is None else str(v) for v in values], type=pa.string())


def _numbered(tree: exp.Expr, parameters: Sequence[Any]) -> tuple[str, list[Any]]:
    """The statement with its `?` as `$1, $2 …`, and the values in that numbering.

    The numbers follow the tree, which is not always the order the SQL is written in (a
    CTE added after the WHERE comes first): the written order is read back from the
    statement's tokens, where a `$2` inside a string literal is only text.
    """
    numbers = itertools.count(1)

    def number(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Placeholder) and not node.this:
            return exp.Parameter(this=exp.Literal.number(next(numbers)))
        return node

    statement = tree.copy().transform(number).sql(DIALECT)
    tokens = sqlglot.tokenize(statement, read=DIALECT)
    written = [int(after.text) for before, after in itertools.pairwise(tokens)
               if before.token_type == TokenType.PARAMETER
               and after.token_type == TokenType.NUMBER]
    if len(written) != len(parameters):
        raise EngineError(f"the query has {len(written)} placeholder(s) for "
                          f"{len(parameters)} value(s)")
    bound: list[Any] = [None] * len(parameters)
    for value, position in zip(parameters, written, strict=True):
        bound[position - 1] = value
    return statement, bound


def _whole(values: list[Any]) -> bool:
    return all(v is None or (v.is_finite() and v == v.to_integral_value() and
                             abs(v) < 2 ** 63) for v in values)


def _numbers(values: list[Any], whole: bool | None = None) -> list[Any]:
    """NUMERIC values as integers when every one is whole (sums and counts), else floats."""
    kind = int if (_whole(values) if whole is None else whole) else float
    return [None if v is None else kind(v) for v in values]


def _check_fixture_columns(name: str, columns: Mapping[str, str],
                           items: Sequence[Mapping[str, Any]]) -> None:
    for item in items:
        for column in item:
            if column not in columns:
                raise DataError(f"fixture rows for '{name}' have column '{column}', which the "
                                "source does not have", hint="columns: " + ", ".join(columns))


__all__ = ["PostgresEngine"]
