"""`retainer export dbt`: a real dbt build of the export gives Retainer's own results.

The end-to-end tests run the `dbt` next to this Python (dbt-duckdb installed in the venv), or
the one `RETAINER_DBT` names (dbt in a venv of its own: Retainer never imports dbt, and
dbt-core 1.11 pins pathspec<0.13 where mypy needs pathspec>=1). Without dbt they skip, saying
how to install it; under CI (`CI` set) its absence fails.
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import duckdb
import pytest
import sqlglot
import typer
from ruamel.yaml import YAML
from sqlglot import exp
from typer.testing import CliRunner

from retainer.cli.export_command import export_dbt
from retainer.cli.main import app as retainer_app
from retainer.export.dbt import MANIFEST, export_dbt_project
from retainer.export.dbt_sql import Relation, jinja_text, model_sql
from retainer.project import Project
from retainer.scaffold import create_demo_project

AS_OF = datetime(2026, 12, 1)
DBT = Path(sys.executable).parent / "dbt"
WAREHOUSES = ["snowflake", "bigquery", "databricks", "postgres"]
INSTALL = ".venv/bin/pip install 'dbt-duckdb>=1.11.1,<1.12' 'dbt-core>=1.11.16,<1.12'"


def need_dbt() -> Path:
    """The dbt executable with the DuckDB adapter, or a skip (a failure under CI)."""
    named = os.environ.get("RETAINER_DBT")
    if named and Path(named).is_file():
        return Path(named)
    if DBT.exists() and importlib.util.find_spec("dbt.adapters.duckdb") is not None:
        return DBT
    missing(f"dbt-duckdb is not installed next to {sys.executable} (nor named by "
            f"RETAINER_DBT); install it with: {INSTALL}")


def missing(message: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def cli() -> typer.Typer:
    """The `export` sub-app as main.py mounts it, built here from the command function."""
    app = typer.Typer()
    export = typer.Typer()
    export.command(name="dbt")(export_dbt)
    app.add_typer(export, name="export")
    return app


def export(*args: str | Path, ok: bool = True) -> Any:
    done = CliRunner().invoke(cli(), ["export", "dbt", *map(str, args)])
    assert done.exception is None or isinstance(done.exception, SystemExit), done.exception
    if ok:
        assert done.exit_code == 0, done.output
    return done


def dbt_build(directory: Path) -> None:
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1"}
    done = subprocess.run([str(need_dbt()), "build", "--profiles-dir", str(directory),
                           "--project-dir", str(directory)], capture_output=True, text=True,
                          cwd=directory, env=env, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]


def assert_same_table(ours: Path, theirs: Path, table: str, key: str) -> int:
    """Every column of `table` equal in both databases (floats within 1e-9 relative)."""
    with duckdb.connect(str(ours), read_only=True) as a, \
            duckdb.connect(str(theirs), read_only=True) as b:
        columns = [row[:2] for row in a.execute(f"DESCRIBE {table}").fetchall()]
        assert [row[:2] for row in b.execute(f"DESCRIBE main.{table}").fetchall()] == columns
        expected = a.execute(f"SELECT * FROM {table} ORDER BY {key}").fetchall()
        actual = b.execute(f"SELECT * FROM main.{table} ORDER BY {key}").fetchall()
    assert len(actual) == len(expected) > 0
    for want, got in zip(expected, actual, strict=True):
        for (name, _), w, g in zip(columns, want, got, strict=True):
            if isinstance(w, float) and isinstance(g, float):
                assert math.isclose(w, g, rel_tol=1e-9), (table, want[0], name, w, g)
            else:
                assert w == g, (table, want[0], name, w, g)
    return len(expected)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dbt") / "acme"
    create_demo_project(root, accounts=150, seed=4, end=datetime(2026, 12, 1))
    return root


# --- a real dbt build ----------------------------------------------------------------------------

@pytest.mark.slow
def test_dbt_build_of_the_demo_gives_retainers_results(demo: Path, tmp_path: Path) -> None:
    need_dbt()
    target = tmp_path / "dbt"
    done = export(target, "-p", demo, "--as-of", "2026-12-01")
    assert "dbt build --profiles-dir" in done.output
    dbt_build(target)
    project = Project(demo)
    report = project.run(AS_OF)   # the first run: no history, as the export's previous_state
    built = target / "retainer.duckdb"
    assert assert_same_table(project.output_database, built, "account_results",
                             "account_id") == report.accounts == 150
    assert assert_same_table(project.output_database, built, "contact_results",
                             "contact_id") == report.contacts
    with duckdb.connect(str(built), read_only=True) as db:
        lifecycle = db.execute("SELECT count(DISTINCT lifecycle) FROM account_results").fetchone()
        assert lifecycle is not None and lifecycle[0] >= 3   # a state machine, rules alone


TINY = """
name: tiny_jinja
database: warehouse.duckdb
output: {include: [name]}
sources:
  accounts: {kind: accounts, from: "data/odd {{dir}} $HOME/accounts {x}.csv", key: account_id, time: created_at, description: "accounts {% raw %} {{ 'not jinja' }}"}
  contacts: {kind: contacts, from: data/contacts.csv, key: contact_id, account: account_id, role: role}
  events: {table: product.events, account: account_id, contact: user_id, time: ts}
traits:
  logins_30d: {count: events, where: "name = 'login'", window: 30d}
  braces_30d: {count: events, where: "name = '{{ login }}' or name like '{%%' or name = '{#'", window: 30d}
  last_seen: {max: ts, from: events}
  tenure_days: "days_between(account.created_at, as_of)"
segments:
  activity:
    state_machine: {min_days: {active: 7}}
    rules:
      - active: "logins_30d >= 1 or braces_30d >= 2"
      - quiet: else
tags:
  curly: "braces_30d >= 1"
"""


@pytest.mark.slow
def test_jinja_lookalikes_odd_paths_and_database_tables_survive(tmp_path: Path) -> None:
    need_dbt()
    root = tmp_path / "tiny"
    odd = root / "data" / "odd {{dir}} $HOME"
    odd.mkdir(parents=True)
    (root / "retainer.yml").write_text(textwrap.dedent(TINY).lstrip(), encoding="utf-8")
    (odd / "accounts {x}.csv").write_text(
        "account_id,name,created_at\na1,Acme,2026-01-01\na2,Glo{{bex}},2026-11-20\n"
        "a3,Initech,2025-05-05\n", encoding="utf-8")
    (root / "data" / "contacts.csv").write_text(
        "contact_id,account_id,role\nc1,a1,practitioner\nc2,a2,executive\n", encoding="utf-8")
    with duckdb.connect(str(root / "warehouse.duckdb")) as db:
        db.execute("CREATE SCHEMA product")
        db.execute("CREATE TABLE product.events (account_id VARCHAR, user_id VARCHAR, "
                   "ts TIMESTAMP, name VARCHAR)")
        db.execute("INSERT INTO product.events VALUES "
                   "('a1', 'c1', '2026-11-29 10:00:00', 'login'), "
                   "('a2', 'c2', '2026-11-28 10:00:00', '{{ login }}'), "
                   "('a2', 'c2', '2026-11-27 10:00:00', '{%x'), "
                   "('a3', NULL, '2026-11-26 10:00:00', '{#'), "
                   "('a3', NULL, '2026-08-01 10:00:00', 'login')")
    target = tmp_path / "dbt {{out}}"
    export(target, "-p", root, "--as-of", "2026-12-01")
    dbt_build(target)
    project = Project(root)
    project.run(AS_OF)
    built = target / "retainer.duckdb"
    assert assert_same_table(project.output_database, built, "account_results",
                             "account_id") == 3
    with duckdb.connect(str(built), read_only=True) as db:
        rows = db.execute("SELECT account_id, name, braces_30d, activity, curly "
                          "FROM account_results ORDER BY 1").fetchall()
    assert rows == [("a1", "Acme", 0, "active", False), ("a2", "Glo{{bex}}", 2, "active", True),
                    ("a3", "Initech", 1, "quiet", True)]


# --- the files, without dbt ----------------------------------------------------------------------

def models_of(directory: Path) -> dict[str, str]:
    return {path.stem: path.read_text(encoding="utf-8")
            for path in sorted((directory / "models").rglob("*.sql"))}


def test_duckdb_export_layout(demo: Path, tmp_path: Path) -> None:
    target = tmp_path / "out"
    export(target, "-p", demo, "--as-of", "2026-12-01")
    plan = Project(demo).plan(AS_OF)
    models = models_of(target)
    assert list(models) != [] and set(models) == {s.name for s in plan.steps} | {"previous_state"}
    for step in plan.steps:
        folder = {"view": None, "table": None, "output": "outputs"}[step.kind]
        path = next((target / "models").rglob(f"{step.name}.sql"))
        assert folder is None or path.parent.name == folder
        kind = "view" if step.kind == "view" else "table"
        assert models[step.name].startswith(f"{{{{ config(materialized='{kind}') }}}}\n")
    assert "src_" not in "".join(models.values())
    assert "{{ ref('run_account') }} AS run_account" in models["account_results"]
    assert "{{ ref('previous_state') }} AS previous_lifecycle" in models["run_account"]
    assert "{{ source('retainer', 'events') }} AS s" in models["stg_events"]
    yaml = YAML(typ="safe")
    project_yml = yaml.load(target / "dbt_project.yml")
    profiles = yaml.load(target / "profiles.yml")
    output = profiles[project_yml["profile"]]["outputs"]["duckdb"]
    assert Path(output["path"]) == target.resolve() / "retainer.duckdb"
    assert output["settings"] == {"TimeZone": "UTC"}
    sources = yaml.load(target / "models" / "sources.yml")["sources"][0]
    assert sources["name"] == "retainer"
    tables = {t["name"]: t for t in sources["tables"]}
    assert set(tables) == set(plan.sources)
    location = tables["events"]["meta"]["external_location"]
    assert location == f"READ_PARQUET('{demo.resolve() / 'data' / 'events.parquet'}')"
    assert {"name": "ts", "data_type": "TIMESTAMP"} in tables["events"]["columns"]
    readme = (target / "README.md").read_text(encoding="utf-8")
    assert "as of 2026-12-01 00:00:00 UTC" in readme and "--as-of 2026-12-01 --force" in readme
    assert "previous_state" in readme and "History" in readme


@pytest.mark.parametrize("dialect", WAREHOUSES)
def test_exported_models_parse_in_their_dialect(demo: Path, tmp_path: Path,
                                                dialect: str) -> None:
    target = tmp_path / dialect
    export(target, "-p", demo, "--as-of", "2026-12-01", "--dialect", dialect)
    assert not (target / "profiles.yml").exists()
    models = models_of(target)
    sources = YAML(typ="safe").load(target / "models" / "sources.yml")["sources"][0]
    assert sources["schema"] == "{{ var('retainer_sources_schema', 'retainer_sources') }}"
    declared = {t["name"] for t in sources["tables"]}
    for name, text in models.items():
        body, refs, used = strip_jinja(text)
        assert refs <= set(models) and used <= declared, name
        parsed = sqlglot.parse_one(body, read=dialect)
        assert isinstance(parsed, exp.Query), name


def strip_jinja(text: str) -> tuple[str, set[str], set[str]]:
    """A model as plain SQL: the config call dropped, refs and sources as table names."""
    refs: set[str] = set()
    used: set[str] = set()

    def ref(match: re.Match[str]) -> str:
        refs.add(match[1])
        return match[1]

    def source(match: re.Match[str]) -> str:
        used.add(match[1])
        return f"retainer_sources.{match[1]}"

    body = re.sub(r"^\{\{ config\(materialized='(view|table)'\) \}\}\n", "", text)
    body = re.sub(r"\{\{ ref\('(\w+)'\) \}\}", ref, body)
    body = re.sub(r"\{\{ source\('retainer', '(\w+)'\) \}\}", source, body)
    assert "{{" not in body and "{%" not in body
    return body, refs, used


@pytest.mark.parametrize("dialect", ["snowflake", "bigquery", "databricks"])
def test_compile_output_parses_back_in_its_dialect(demo: Path, dialect: str) -> None:
    done = CliRunner().invoke(retainer_app, ["compile", "-p", str(demo), "--as-of",
                                             "2026-12-01", "--dialect", dialect])
    assert done.exit_code == 0, done.output
    statements = [s for s in sqlglot.parse(done.stdout, read=dialect) if s is not None]
    steps = [step.name for step in Project(demo).plan(AS_OF, dialect=dialect).steps]
    assert all(isinstance(s, exp.Create) for s in statements)
    assert [s.this.name for s in statements] == steps


# --- the command's errors ------------------------------------------------------------------------

def test_unknown_dialect_is_exit_1_with_the_choices(demo: Path, tmp_path: Path) -> None:
    done = export(tmp_path / "out", "-p", demo, "--dialect", "oracle", ok=False)
    assert done.exit_code == 1
    assert "unknown dialect 'oracle'" in done.stderr
    assert "duckdb, snowflake, bigquery, databricks, postgres" in done.stderr
    assert not (tmp_path / "out").exists()


def test_non_empty_directory_needs_force_which_replaces_only_the_export(
        demo: Path, tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (target / "notes.txt").write_text("mine", encoding="utf-8")
    done = export(target, "-p", demo, "--as-of", "2026-12-01", ok=False)
    assert done.exit_code == 1
    assert "is not empty" in done.stderr and "--force" in done.stderr
    export(target, "-p", demo, "--as-of", "2026-12-01", "--force")
    stale = target / "models" / "staging" / "stg_gone.sql"
    stale.write_text("select 1", encoding="utf-8")
    manifest = (target / MANIFEST).read_text(encoding="utf-8")
    (target / MANIFEST).write_text(manifest.replace('"files": [', '"files": [\n'
                                                    '    "models/staging/stg_gone.sql",'),
                                   encoding="utf-8")
    export(target, "-p", demo, "--as-of", "2026-11-15", "--force", "--dialect", "snowflake")
    assert not stale.exists() and not (target / "profiles.yml").exists()
    assert (target / "notes.txt").read_text(encoding="utf-8") == "mine"
    assert "2026-10-16 00:00:00" in (target / "models" / "aggregates" / "agg_events_windowed.sql"
                                     ).read_text(encoding="utf-8")


def test_an_invalid_project_is_reported_not_raised(tmp_path: Path) -> None:
    done = export(tmp_path / "out", "-p", tmp_path / "nowhere", ok=False)
    assert done.exit_code in (1, 2) and "Traceback" not in done.output
    assert not (tmp_path / "out").exists()


# --- the templating ------------------------------------------------------------------------------

def test_relations_become_jinja_on_the_tree_and_ctes_stay() -> None:
    query = sqlglot.parse_one(
        "WITH base AS (SELECT a.x FROM src_accounts AS a JOIN stg_y ON stg_y.k = a.k) "
        "SELECT '{{ ref(''stg_y'') }}' AS lit, x FROM base JOIN stg_y ON TRUE "
        "WHERE x IN (SELECT k FROM previous_state)")
    assert isinstance(query, exp.Query)
    known = {"src_accounts": Relation("source", "accounts"),
             "stg_y": Relation("ref", "stg_y"), "previous_state": Relation("ref", "previous_state")}
    model = model_sql(query, "duckdb", known.get)
    assert model.reads == (Relation("ref", "previous_state"), Relation("ref", "stg_y"),
                           Relation("source", "accounts"))
    rendered = jinja().from_string(model.text).render(
        ref=lambda name: f"db.main.{name}", source=lambda group, name: f"{group}.{name}")
    assert rendered == sqlglot.transpile(
        "WITH base AS (SELECT a.x FROM retainer.accounts AS a JOIN db.main.stg_y AS stg_y "
        "ON stg_y.k = a.k) SELECT '{{ ref(''stg_y'') }}' AS lit, x FROM base "
        "JOIN db.main.stg_y AS stg_y ON TRUE WHERE x IN (SELECT k FROM "
        "db.main.previous_state AS previous_state)", read="duckdb", pretty=True)[0]
    with pytest.raises(Exception, match="neither a step nor a source"):
        model_sql(query, "duckdb", lambda name: None)


@pytest.mark.parametrize("text", [
    "plain", "a {{ b }} c", "{% raw %}x{% endraw %}", "{# c #}", "it's \\ {{'q'}}\n\r\tdone",
    "ends with {", "ümlaut {{ 😀 }}", "}} {%- endraw -%}"])
def test_jinja_text_renders_back_to_itself(text: str) -> None:
    environment = jinja()
    assert environment.from_string(jinja_text(text)).render() == text
    assert environment.from_string(jinja_text(text) + "{{ 1 }}").render() == text + "1"


def jinja() -> Any:
    """A Jinja environment like dbt's."""
    if importlib.util.find_spec("jinja2") is None:
        missing(f"jinja2 is not installed (it comes with dbt: {INSTALL})")
    import jinja2
    return jinja2.Environment(keep_trailing_newline=True)


def test_export_api_refuses_a_file_as_directory(demo: Path, tmp_path: Path) -> None:
    project = Project(demo)
    catalog = project.catalog()
    plan = project.plan(AS_OF, catalog)
    (tmp_path / "file").write_text("x", encoding="utf-8")
    with pytest.raises(Exception, match="is a file"):
        export_dbt_project(project.rulebook, catalog, plan, tmp_path / "file")


def test_the_layout_in_the_docs_is_what_an_export_writes(demo: Path, tmp_path: Path) -> None:
    document = (Path(__file__).parent.parent / "docs" / "dbt.md").read_text(encoding="utf-8")
    tree = document.split("```text\n", 1)[1].split("```", 1)[0]
    listed = [m[1] for line in tree.splitlines() if (m := re.match(r"^  (\S+)", line))]
    assert len(listed) >= 10
    target = tmp_path / "out"
    export(target, "-p", demo, "--as-of", "2026-12-01")
    written = {str(p.relative_to(target)) + ("/" if p.is_dir() else "")
               for p in target.rglob("*")}
    assert set(listed) <= written
    assert {w for w in written if w.count("/") <= 1 and not w.startswith("models/")} \
        <= set(listed) | {"models/"}
