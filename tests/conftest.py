"""Shared fixtures: small projects written to temporary directories, and the demo project."""

from __future__ import annotations

import os
import textwrap
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest

from retainer.demo.generator import DemoSummary
from retainer.scaffold import create_demo_project

DEMO_END = datetime(2026, 12, 1)
ProjectWriter = Callable[..., Path]

BASE_PROJECT = """
name: tiny
output: {include: [name], formats: [parquet, csv]}
sources:
  accounts: {kind: accounts, from: data/accounts.csv, key: account_id, time: created_at}
  contacts: {kind: contacts, from: data/contacts.csv, key: contact_id, account: account_id, role: role}
  events: {from: data/events.csv, account: account_id, contact: user_id, time: ts}
"""
BASE_DATA = {
    "accounts.csv": "account_id,name,created_at\na1,Acme,2026-01-01\na2,Globex,2026-11-20\n",
    "contacts.csv": "contact_id,account_id,role\nc1,a1,practitioner\nc2,a1,executive\n",
    "events.csv": "account_id,user_id,ts,name,feature\n"
                  "a1,c1,2026-11-29 10:00:00,login,\n"
                  "a1,c2,2026-11-20 10:00:00,feature_used,api\n",
}


@pytest.fixture
def write_project(tmp_path: Path) -> ProjectWriter:
    """Write a project: retainer.yml, rulebook files and data files (dedented text)."""

    def write(project: str = BASE_PROJECT, rulebook: dict[str, str] | None = None,
              data: dict[str, str] | None = None, root: Path | None = None) -> Path:
        root = root or tmp_path / "project"
        (root / "data").mkdir(parents=True, exist_ok=True)
        (root / "rulebook").mkdir(exist_ok=True)
        (root / "retainer.yml").write_text(textwrap.dedent(project).lstrip(), encoding="utf-8")
        for name, text in (rulebook or {}).items():
            (root / "rulebook" / name).write_text(textwrap.dedent(text).lstrip(),
                                                  encoding="utf-8")
        for name, text in {**BASE_DATA, **(data or {})}.items():
            (root / "data" / name).write_text(text, encoding="utf-8")
        return root

    return write


@pytest.fixture(scope="session")
def demo_project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DemoSummary]:
    """The demo project as `retainer init` makes it, with a fixed seed and end date."""
    root = tmp_path_factory.mktemp("demo") / "acme"
    summary = create_demo_project(root, accounts=300, seed=11, end=DEMO_END)
    return root, summary


POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh schema in the local PostgreSQL server, dropped afterwards.

    Skipped with instructions when no server is reachable, except under CI, where the
    server is part of the machine and its absence is a failure.
    """
    import psycopg

    try:
        connection = psycopg.connect(POSTGRES, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL is not reachable at 127.0.0.1:5432 ({exc}); start it with "
                    "'pg_ctlcluster 15 main start'")
    schema = f"retainer_test_{uuid.uuid4().hex[:10]}"
    try:
        yield f"{POSTGRES}?schema={schema}"
    finally:
        connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        connection.close()
