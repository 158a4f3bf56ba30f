"""The crash tests' shared projects: the demo project, the results of good runs of it, and
PostgreSQL state stores.

The demo and the expected results are built once for the whole package (that takes four
full runs); no test changes them, each test runs on a copy.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from retainer.project import Project
from retainer.scaffold import create_demo_project
from tests.crash.checks import Expected, check_agreement, check_store, pg_lock_holders, read_outputs
from tests.crash.projects import (
    ACCOUNTS,
    NEW,
    NEW_AS_OF,
    OLD,
    OLD_AS_OF,
    PG_SERVER,
    copy_project,
    retainer,
    wait_for,
)
from tests.demo_data import accounts_at


@pytest.fixture(scope="package")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("crash-demo") / "acme"
    create_demo_project(root, accounts=ACCOUNTS, seed=5, end=datetime(2026, 12, 1))
    return root


@pytest.fixture(scope="package")
def expected(demo: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Expected]:
    """What good runs at OLD_AS_OF, again, NEW_AS_OF and again publish and record."""
    root = copy_project(demo, tmp_path_factory.mktemp("crash-reference") / "acme")
    project = Project(root)
    results = {}
    for name, as_of in (("old", OLD_AS_OF), ("old-again", OLD_AS_OF), ("new", NEW_AS_OF),
                        ("again", NEW_AS_OF)):
        retainer("run", "-p", root, "--as-of", as_of)
        outputs, state = read_outputs(project), check_store(project)
        check_agreement(outputs, state)
        results[name] = Expected(outputs, state.memberships)
    assert results["old"].outputs.as_of == OLD and results["new"].outputs.as_of == NEW
    assert results["old"].memberships != results["new"].memberships
    # Accounts keep signing up after each as_of: a run leaves out those not created yet.
    assert accounts_at(root, OLD) < accounts_at(root, NEW) < ACCOUNTS
    # Re-running the latest as_of changes nothing in history nor in the results.
    for first, again in (("old", "old-again"), ("new", "again")):
        assert results[again].memberships == results[first].memberships
        outputs, reference = results[again].outputs, results[first].outputs
        assert outputs.exports == reference.exports
        assert {n: t for n, t in outputs.tables.items() if n != "account_reasons"} == \
            {n: t for n, t in reference.tables.items() if n != "account_reasons"}
    return results


@pytest.fixture(scope="package")
def pg_server() -> Iterator[Any]:
    """A connection to the local PostgreSQL server; skipped without one (failed on CI)."""
    psycopg = pytest.importorskip("psycopg")
    try:
        conn = psycopg.connect(PG_SERVER, autocommit=True, connect_timeout=5)
    except psycopg.Error as exc:
        message = (f"PostgreSQL is not reachable at 127.0.0.1:5432 ({str(exc).strip()}); "
                   "start it with 'pg_ctlcluster 15 main start'")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with conn:
        yield conn


@pytest.fixture
def pg_state(pg_server: Any) -> Iterator[str]:
    """A `state:` URL naming a fresh schema of the local server, dropped afterwards."""
    from psycopg import sql
    schema = f"retainer_crash_{uuid.uuid4().hex[:12]}"
    try:
        yield f"{PG_SERVER}?schema={schema}"
    finally:
        wait_for(lambda: not pg_lock_holders(PG_SERVER, schema), "the store's sessions to end")
        pg_server.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
            sql.Identifier(schema)))
