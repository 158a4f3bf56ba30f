"""`retainer forget` on a project computed by PostgreSQL: the work schema keeps the latest
results for people to query and copies of the file sources a run loaded; the person leaves
both, and a later run with the person still in the sources does not bring them back there."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import psycopg
from psycopg import sql

from retainer.project import Project
from retainer.state.postgres_backend import split_schema
from tests.conftest import ProjectWriter
from tests.engine.test_postgres_engine import use_postgres
from tests.privacy.test_forget import DATA, PERSON_EMAIL, PERSON_ID, PROJECT, retainer

RULEBOOK = """
traits:
  logins: {count: events, where: "name = 'login'", window: 30d, entity: contact}
segments:
  persona:
    entity: contact
    rules:
      - active: "logins > 0"
      - idle:   else
"""


def work_schema(url: str) -> dict[str, list[str]]:
    """Every table of the work schema that holds the person's id or address, with what it
    holds of them, and the contacts of the published contact_results."""
    dsn, schema = split_schema(url)
    found: dict[str, list[str]] = {}
    with psycopg.connect(dsn, autocommit=True) as db:
        tables = [str(r[0]) for r in db.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
            "AND table_type = 'BASE TABLE'", [schema]).fetchall()]
        for table in tables:
            text = db.execute(sql.SQL("SELECT string_agg(t::text, ' ') FROM {} t").format(
                sql.Identifier(str(schema), table))).fetchall()[0][0] or ""
            hits = [s for s in (PERSON_ID, PERSON_EMAIL) if s in text]
            if hits:
                found[table] = hits
        found["contact_results"] = [str(r[0]) for r in db.execute(sql.SQL(
            "SELECT contact_id FROM {} ORDER BY 1").format(
                sql.Identifier(str(schema), "contact_results"))).fetchall()]
    return found


def test_forget_reaches_the_postgresql_work_schema(write_project: ProjectWriter,
                                                   postgres_url: str) -> None:
    root: Path = write_project(PROJECT.lstrip(), {"rules.yml": RULEBOOK}, DATA)
    use_postgres(root, postgres_url)
    Project(root).run(datetime(2026, 12, 1))
    before = work_schema(postgres_url)
    assert PERSON_ID in before["contact_results"]            # the test can fail
    assert "src_contacts" in before                          # a loaded copy of the file
    retainer("forget", "--contact", PERSON_ID, "-p", root, "--yes")
    after = work_schema(postgres_url)
    assert after == {"contact_results": ["ctc-bob-0002", "ctc-cid-0003"]}
    # The person is still in the files: the next run leaves them out of the work schema's
    # results too (its loaded copies of the sources are the run's, and are dropped).
    Project(root).run(datetime(2026, 12, 2))
    assert work_schema(postgres_url) == {"contact_results": ["ctc-bob-0002", "ctc-cid-0003"]}
    # A backfill computes several dates on the same work: it is cleared after the last.
    Project(root).backfill(datetime(2026, 12, 3), datetime(2026, 12, 5), timedelta(days=1))
    assert work_schema(postgres_url) == {"contact_results": ["ctc-bob-0002", "ctc-cid-0003"]}
