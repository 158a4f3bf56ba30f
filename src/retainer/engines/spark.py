"""Apache Spark as the compute engine, through PySpark (local mode or a cluster).

* File sources are read by Spark itself (CSV with a header and inferred types, Parquet,
  JSON) and `table:` sources are tables of the session's catalog; each becomes the temporary
  view `src_<name>`. Fixture rows of rule tests are typed as DuckDB types them (like the real
  files when they are readable), then handed to Spark as Arrow.
* The session runs in UTC. Work steps are temporary views; table steps are also cached, so each
  is computed once. Outputs are staged as cached `<name>__next` views and handed to the local
  results engine as Arrow; Spark publishes nothing itself.
* Each engine works in its own session (`newSession()`: own temporary views and settings, one
  shared SparkContext), so a session passed in — a notebook's, a test's — is not disturbed.
* `_for_spark` spells the few constructs of the compiled trees that Spark reads differently
  (see its docstring); they belong in compile/capabilities.py and will move there.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from sqlglot import exp

from retainer.compile.capabilities import DIALECTS
from retainer.compile.catalog import Catalog
from retainer.compile.plan import Plan
from retainer.compile.sql import round_to
from retainer.compile.staging import src
from retainer.engines.base import Engine, Progress
from retainer.engines.duckdb import DuckDBEngine, staged
from retainer.errors import DataError, EngineError, RetainerError, first_line
from retainer.rulebook.loader import Rulebook
from retainer.rulebook.models import Source, SparkSettings

DIALECT = "spark"
DEFAULT_MASTER = "local[2]"
# Settings every session gets: UTC like the other engines, few partitions (the data of one
# entity pipeline is small next to Spark's default of 200), no web UI.
SESSION_CONFIG = {"spark.sql.session.timeZone": "UTC", "spark.sql.shuffle.partitions": "4",
                  "spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false"}
PREVIOUS_STATE = "level STRING, entity_id STRING, dimension STRING, segment STRING, " \
                 "entered_at TIMESTAMP"
# Spark's type names (DataType.typeName()) → the names the compiler's category() reads.
_TYPE_NAMES = {"string": "VARCHAR", "varchar": "VARCHAR", "char": "VARCHAR",
               "long": "BIGINT", "integer": "INTEGER", "short": "SMALLINT", "byte": "TINYINT",
               "double": "DOUBLE", "float": "FLOAT", "boolean": "BOOLEAN", "date": "DATE",
               "timestamp": "TIMESTAMP", "timestamp_ntz": "TIMESTAMP_NTZ",
               "binary": "BLOB"}


_SLASHED = r"^\s*(\d{4})/(\d{1,2})/(\d{1,2})"
# `2026-03-02 10:00+02:00`: Spark reads an offset only after seconds, so `:00` is added.
_NO_SECONDS = r"^(\s*\d{4}-\d{1,2}-\d{1,2}[ T]\d{1,2}:\d{2})([+-]\d{2}(:?\d{2})?|Z)\s*$"
_ROUNDING = replace(DIALECTS[DIALECT], rounding="half_away_double")


class SparkEngine(Engine):
    capabilities = DIALECTS[DIALECT]

    def __init__(self, settings: SparkSettings | None = None, *, session: Any = None) -> None:
        try:
            from pyspark.sql import SparkSession
        except ImportError:
            raise RetainerError("the spark engine needs pyspark",
                                hint="pip install 'retainer[spark]' (and Java 17 or later)"
                                ) from None
        base = session or SparkSession.getActiveSession()
        self._owns_base = base is None
        if base is None:
            settings = settings or SparkSettings(master=DEFAULT_MASTER)
            builder = SparkSession.builder.master(settings.master).appName(settings.app_name)
            for key, value in {**SESSION_CONFIG, **settings.config}.items():
                builder = builder.config(key, value)
            try:
                base = builder.getOrCreate()
            except Exception as exc:
                raise RetainerError(f"cannot start Spark ({settings.master}): "
                                    f"{first_line(exc)}",
                                    hint="check spark.master in retainer.yml and that Java 17 "
                                         "or later is installed (JAVA_HOME)") from None
            base.sparkContext.setLogLevel("ERROR")
        self._base = base
        self.spark = base.newSession()
        for key, value in SESSION_CONFIG.items():
            if key.startswith("spark.sql."):
                self.spark.conf.set(key, value)
        for key, value in (settings.config.items() if settings else ()):
            if key.startswith("spark.sql."):
                self.spark.conf.set(key, value)
        self._cached: set[str] = set()
        self._previous_loaded = False

    @classmethod
    def for_rulebook(cls, rulebook: Rulebook) -> SparkEngine:
        return cls(rulebook.config.spark)

    # --- sources -------------------------------------------------------------------------

    def attach_sources(self, rulebook: Rulebook) -> Catalog:
        columns: dict[str, dict[str, str]] = {}
        described: dict[str, str] = {}
        for name, source in rulebook.sources.items():
            frame, where = self._read(rulebook, name, source)
            frame.createOrReplaceTempView(src(name))
            columns[name] = _columns(frame.schema)
            described[name] = where
        return Catalog(columns, described)

    def attach_rows(self, rulebook: Rulebook,
                    rows: Mapping[str, Sequence[Mapping[str, Any]]]) -> Catalog:
        """Rows typed as DuckDB types them for a rule test (like the real files where they
        are readable), handed over as Arrow."""
        reader = DuckDBEngine()
        try:
            read = reader.attach_rows(rulebook, rows)
            columns: dict[str, dict[str, str]] = {}
            for name in read.columns:
                table = reader.arrow(exp.select(exp.Star()).from_(src(name)))
                frame = self._frame(table)
                frame.createOrReplaceTempView(src(name))
                columns[name] = _columns(frame.schema)
        finally:
            reader.close()
        return Catalog(columns, dict(read.described))

    def _read(self, rulebook: Rulebook, name: str, source: Source) -> tuple[Any, str]:
        if source.table is not None:
            try:
                return self.spark.table(source.table), f"table {source.table}"
            except Exception as exc:
                raise DataError(f"source '{name}': cannot read table '{source.table}': "
                                f"{first_line(exc)}", location=rulebook.source_location(name),
                                hint="the table must be in the Spark session's catalog"
                                ) from None
        assert source.from_ is not None
        path = rulebook.path(source.from_)
        try:
            fmt = source.file_format()
        except ValueError as exc:
            raise DataError(str(exc), location=rulebook.source_location(name)) from None
        reader = self.spark.read
        try:
            if fmt == "csv":
                frame = reader.csv(str(path), header=True, inferSchema=True)
            elif fmt == "parquet":
                frame = reader.parquet(str(path))
            else:
                frame = reader.json(str(path))
        except Exception as exc:
            message = first_line(exc)
            if "PATH_NOT_FOUND" in message or "does not exist" in message:
                raise DataError(f"source '{name}': no file matches {source.from_}",
                                location=rulebook.source_location(name),
                                hint=f"looked for {path}; paths are relative to the project "
                                     "directory") from None
            raise DataError(f"cannot read source '{name}' ({source.from_}): {message}",
                            location=rulebook.source_location(name),
                            hint="check that the file is well-formed and its format matches "
                                 "its extension (or set 'format')") from None
        if fmt == "csv":  # DuckDB reads whole numbers of a text file as BIGINT
            frame = frame.select(*[
                frame[f.name].cast("bigint").alias(f.name)
                if f.dataType.typeName() in ("integer", "short", "byte") else frame[f.name]
                for f in frame.schema.fields])
        return frame, source.from_

    def _frame(self, table: Any) -> Any:
        """A Spark DataFrame of an Arrow table; naive Arrow times (TIMESTAMP_NTZ in Spark)
        become Spark TIMESTAMPs, which the UTC session reads as the same wall-clock time."""
        import pyarrow as pa
        fields = []
        for field in table.schema:
            kind = field.type
            if pa.types.is_timestamp(kind):
                kind = pa.timestamp("us", tz="UTC")
            elif pa.types.is_unsigned_integer(kind):
                kind = pa.int64()
            elif pa.types.is_null(kind):
                kind = pa.string()
            fields.append(pa.field(field.name, kind))
        table = table.cast(pa.schema(fields))
        return self.spark.createDataFrame(table)

    # --- running -------------------------------------------------------------------------

    def load_previous_state(self, rows: Any = None) -> None:
        if rows is None or not rows.num_rows:
            frame = self.spark.createDataFrame([], PREVIOUS_STATE)
        else:
            frame = self._frame(rows.select(["level", "entity_id", "dimension", "segment",
                                             "entered_at"]))
        frame.createOrReplaceTempView("previous_state")
        self._previous_loaded = True

    def execute(self, plan: Plan, progress: Progress | None = None) -> None:
        if plan.state_machines and not self._previous_loaded:
            self.load_previous_state()
        steps = list(plan.work())
        for index, step in enumerate(steps):
            if progress:
                progress(step, index, len(steps))
            self._replace(step.name, step.query, cache=step.kind != "view")

    def stage_outputs(self, plan: Plan, temporary: bool = True) -> None:
        """Compute the outputs as cached `<name>__next` views; `temporary` does not apply:
        the local results engine publishes them."""
        del temporary
        for step in plan.outputs():
            self._replace(staged(step.name), step.query, cache=True)

    def staged_arrow(self, name: str) -> Any:
        return self._arrow(self.spark.table(staged(name)))

    def _arrow(self, frame: Any) -> Any:
        """Rows as Arrow, times as naive UTC TIMESTAMPs as DuckDB's results have them."""
        import pyarrow as pa
        try:
            table = frame.toArrow()
        except Exception as exc:
            raise EngineError(f"cannot read results: {first_line(exc)}") from None
        fields = []
        for field in table.schema:
            kind = field.type
            if pa.types.is_timestamp(kind):
                kind = pa.timestamp("us")
            fields.append(pa.field(field.name, kind))
        return table.cast(pa.schema(fields))

    def query(self, sql: exp.Expr, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The rows of a query, `?` placeholders bound by Spark; read through Arrow, so times
        are naive UTC as on the other engines (collect() would give the Python process's
        local time)."""
        assert isinstance(sql, exp.Query)
        try:
            frame = self.spark.sql(_for_spark(sql).sql(DIALECT), args=list(parameters) or None)
        except Exception as exc:
            raise EngineError(f"query failed: {first_line(exc)}") from None
        table = self._arrow(frame)
        return list(zip(*(column.to_pylist() for column in table.columns), strict=True))

    def close(self) -> None:
        for name in self._cached:
            with contextlib.suppress(Exception):  # the session may be gone already
                self.spark.catalog.uncacheTable(name)
        self._cached.clear()
        if self._owns_base:
            self._base.stop()

    # --- statements ----------------------------------------------------------------------

    def _replace(self, name: str, query: exp.Query, cache: bool) -> None:
        sql = _for_spark(query).sql(DIALECT)
        if name in self._cached:
            self.spark.catalog.uncacheTable(name)
            self._cached.discard(name)
        try:
            self.spark.sql(sql).createOrReplaceTempView(name)
            if cache:
                self.spark.sql(f"CACHE TABLE `{name}`")
                self._cached.add(name)
        except Exception as exc:
            raise EngineError(f"while computing {name}: {first_line(exc)}") from None


def _for_spark(query: exp.Query) -> exp.Expr:
    """The compiled tree spelt so that Spark gives it DuckDB's meaning.

    * `ARG_MAX(value, (time, value))`: Spark's MAX_BY takes an orderable key, and a tuple is a
      STRUCT there: `MAX_BY(value, STRUCT(time, value))` (structs order field by field).
    * `TRY_CAST(text AS TIMESTAMPTZ) AT TIME ZONE 'UTC'`: sqlglot spells it
      `FROM_UTC_TIMESTAMP(CAST(…))`, losing the TRY (bad text then stops the run). A Spark
      TIMESTAMP is an instant shown in the session's zone, UTC, so the conversion is a no-op:
      only the cast remains, spelt `TRY_TO_TIMESTAMP(text)`.
    * `ROUND(double, n)`: Spark rounds the double's shortest decimal (2.675 → 2.68), DuckDB
      its exact value (2.67): the compiler's `half_away_double` spelling.
    """

    def shape(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.AtTimeZone) and node.args.get("zone") == \
                exp.Literal.string("UTC"):
            inner = node.this
            if isinstance(inner, exp.TryCast) and inner.to.is_type(*exp.DataType.TEMPORAL_TYPES):
                # sqlglot's Spark spells TRY_CAST to a time as CAST: TRY_TO_TIMESTAMP is
                # Spark's cast of text to a time that gives NULL for bad text.
                # Spark reads no slashes: `2026/2/8` becomes `2026-2-8` first.
                text = exp.RegexpReplace(this=exp.cast(inner.this, "STRING"),
                                         expression=exp.Literal.string(_SLASHED),
                                         replacement=exp.Literal.string("$1-$2-$3"))
                text = exp.RegexpReplace(this=text, expression=exp.Literal.string(_NO_SECONDS),
                                         replacement=exp.Literal.string("$1:00$2"))
                return exp.Anonymous(this="TRY_TO_TIMESTAMP", expressions=[text])
            found: exp.Expr = inner
            return found
        if isinstance(node, exp.Round):
            digits = node.args.get("decimals")
            return round_to(node.this, digits, _ROUNDING)
        if isinstance(node, (exp.ArgMax, exp.ArgMin)) and isinstance(node.expression,
                                                                      exp.Tuple):
            key = exp.Struct(expressions=[e.copy() for e in node.expression.expressions])
            return type(node)(this=node.this.copy(), expression=key)
        return node

    return query.copy().transform(shape)


def _columns(schema: Any) -> dict[str, str]:
    """A Spark schema as `{column: type}` in the names the compiler reads (DuckDB's)."""
    columns: dict[str, str] = {}
    for field in schema.fields:
        name = field.dataType.typeName()
        if name == "decimal":
            columns[field.name] = f"DECIMAL({field.dataType.precision},{field.dataType.scale})"
        else:
            columns[field.name] = _TYPE_NAMES.get(name, name.upper())
    return columns


__all__ = ["SparkEngine"]
