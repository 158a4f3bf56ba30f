"""The YAML files of an exported dbt project: dbt_project.yml, profiles.yml, sources, schema.

dbt renders YAML values with Jinja, so every string written here goes through `jinja_text`
(a `{{` in a path or a description comes out as itself); `Template` marks the few values that
are Jinja on purpose. Strings are written JSON-quoted, which YAML reads as they are.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from contextlib import suppress
from pathlib import Path

from sqlglot import exp
from sqlglot.errors import ParseError

from retainer.compile.catalog import Catalog
from retainer.export.dbt_sql import SOURCE_GROUP, jinja_text
from retainer.rulebook.loader import Rulebook

DATABASE_FILE = "retainer.duckdb"   # what the DuckDB profile builds into, inside the export
ATTACHED = "srcdb"   # the alias the project database is attached under, as the engine does
SOURCES_SCHEMA_VAR = "retainer_sources_schema"
READERS = {"csv": "read_csv", "parquet": "read_parquet", "json": "read_json_auto"}
_PLAIN_KEY = re.compile(r"[A-Za-z_+][A-Za-z0-9_+\-]*")


class Template(str):
    """A value that is Jinja on purpose: written as is."""


def dump(value: Mapping[str, object], header: str = "") -> str:
    """A mapping as block-style YAML, after `header` (comment lines)."""
    return header + "\n".join(_lines(value, 0)) + "\n"


def _lines(value: object, depth: int) -> list[str]:
    pad = "  " * depth
    if isinstance(value, Mapping):
        lines: list[str] = []
        for key, item in value.items():
            name = key if _PLAIN_KEY.fullmatch(key) else json.dumps(key, ensure_ascii=False)
            if _inline(item):
                lines.append(f"{pad}{name}: {_scalar(item)}")
            else:
                lines.append(f"{pad}{name}:")
                lines += _lines(item, depth + 1)
        return lines
    assert isinstance(value, Sequence) and not isinstance(value, str)
    lines = []
    for item in value:
        if _inline(item):
            lines.append(f"{pad}- {_scalar(item)}")
        else:
            inner = _lines(item, depth + 1)
            lines += [f"{pad}- {inner[0].lstrip()}", *inner[1:]]
    return lines


def _inline(item: object) -> bool:
    """Scalars, empty mappings and lists of scalars go on the key's line."""
    if isinstance(item, Mapping):
        return not item
    if isinstance(item, list | tuple):
        return all(not isinstance(i, Mapping | list | tuple) for i in item)
    return True


def _scalar(item: object) -> str:
    if isinstance(item, bool):
        return "true" if item else "false"
    if item is None:
        return "null"
    if isinstance(item, int | float):
        return repr(item)
    if isinstance(item, Mapping):
        return "{}"
    if isinstance(item, list | tuple):
        return "[" + ", ".join(_scalar(i) for i in item) + "]"
    text = str(item) if isinstance(item, Template) else jinja_text(str(item))
    return json.dumps(text, ensure_ascii=False)


# --- the documents -----------------------------------------------------------------------------

def sources_yml(rulebook: Rulebook, catalog: Catalog, names: Sequence[str], dialect: str
                ) -> dict[str, object]:
    """The `retainer` source group: files read in place for DuckDB, tables elsewhere."""
    tables: list[dict[str, object]] = []
    for name in names:
        source = rulebook.sources[name]
        where = source.from_ if source.from_ is not None else f"table {source.table}"
        table: dict[str, object] = {
            "name": name,
            "description": source.description or f"{source.kind} ({where})"}
        if dialect == "duckdb":
            # dbt-duckdb formats the location with string.Template: `$` must be doubled.
            table["meta"] = {"external_location": duckdb_location(rulebook, name)
                             .replace("$", "$$"), "formatter": "template"}
        elif source.table is not None:
            table["identifier"] = exp.to_table(source.table).name
        table["columns"] = [_column(column, kind, dialect)
                            for column, kind in catalog.columns.get(name, {}).items()]
        tables.append(table)
    group: dict[str, object] = {
        "name": SOURCE_GROUP,
        "description": "The sources the Retainer rulebook reads"}
    if dialect != "duckdb":
        group["schema"] = Template(f"{{{{ var('{SOURCES_SCHEMA_VAR}', 'retainer_sources') }}}}")
    group["tables"] = tables
    return {"version": 2, "sources": [group]}


def duckdb_location(rulebook: Rulebook, name: str) -> str:
    """How DuckDB reads a source — the same relation the embedded engine reads (engines/
    duckdb.py): a file reader over the absolute path, or the table of the attached database."""
    source = rulebook.sources[name]
    if source.table is not None:
        table = exp.to_table(source.table)
        table.set("catalog", exp.to_identifier(ATTACHED))
        return exp.select(exp.Star()).from_(table).subquery().sql("duckdb")
    assert source.from_ is not None
    fmt = source.file_format()
    args: list[exp.Expr] = [exp.Literal.string(str(rulebook.path(source.from_).resolve()))]
    if fmt == "csv":
        args.append(exp.PropertyEQ(this=exp.to_identifier("header"), expression=exp.true()))
    return exp.Anonymous(this=READERS[fmt], expressions=args).sql("duckdb")


def _column(name: str, kind: str, dialect: str) -> dict[str, object]:
    """A source column with the type Retainer read (in the target's words, where it has
    them): the compiled SQL was shaped for that type."""
    column: dict[str, object] = {"name": name}
    if dialect == "duckdb":
        column["data_type"] = kind
        return column
    with suppress(ParseError, ValueError):   # a type the target cannot name stays undocumented
        column["data_type"] = exp.DataType.build(kind, dialect="duckdb").sql(dialect)
    return column


def project_yml(name: str) -> dict[str, object]:
    return {"name": name, "version": "1.0.0", "config-version": 2, "profile": name,
            "require-dbt-version": [">=1.8.0", "<2.0.0"], "model-paths": ["models"],
            "clean-targets": ["target", "logs"]}


def duckdb_profile(name: str, database: Path, rulebook: Rulebook) -> dict[str, object]:
    """A profile for dbt-duckdb: a database file in the export, sessions in UTC (as the
    engine runs them), and the project database attached when sources read its tables."""
    output: dict[str, object] = {"type": "duckdb", "path": str(database), "threads": 4,
                                 "settings": {"TimeZone": "UTC"}}
    if rulebook.config.database is not None and any(
            s.table is not None for s in rulebook.sources.values()):
        output["attach"] = [{"path": str(rulebook.path(rulebook.config.database).resolve()),
                             "alias": ATTACHED, "read_only": True}]
    return {name: {"target": "duckdb", "outputs": {"duckdb": output}}}
