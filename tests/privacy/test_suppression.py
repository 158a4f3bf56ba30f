"""A forgotten person who is still (or again) in the sources never comes back: runs leave
them out of history, results and exports — matched by their salted id or address hash —
whether the store is a DuckDB file or PostgreSQL, and whichever engine computes."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import duckdb

from retainer.privacy.tombstones import (
    Forgotten,
    forgotten_hashes,
    store_salt,
    subject_hash,
    write_tombstone,
)
from retainer.project import Project
from retainer.state.postgres_backend import split_schema
from tests.conftest import BASE_PROJECT, ProjectWriter

AS_OF = datetime(2026, 12, 1)
PROJECT = BASE_PROJECT.replace("role: role}", "role: role, email: email}")
CONTACTS = ("contact_id,account_id,role,email\n"
            "c1,a1,practitioner,Ann@Example.com\n"
            "c2,a1,executive,bob@example.com\n"
            "c3,a2,practitioner,\n")
RULEBOOK = {"rules.yml": """
traits:
  logins: {count: events, where: "name = 'login'", entity: contact}
  people: {count: contacts}
segments:
  persona:
    entity: contact
    rules:
      - active: "logins > 0"
      - idle: else
"""}


def forget(project: Project, *values: tuple[str, str]) -> None:
    """Tombstones as `retainer forget` writes them (kind, value)."""
    with project.store() as store, store.backend.transaction():
        salt = store_salt(store, create=True)
        assert salt is not None
        for kind, value in values:
            write_tombstone(store, subject_hash(salt, value), kind,  # type: ignore[arg-type]
                            AS_OF, {"complete": True})


def contacts_seen(root: Path) -> dict[str, list[str]]:
    """Contact ids in each place a run writes them."""
    with duckdb.connect(str(root / ".retainer" / "output.duckdb"), read_only=True) as db:
        results = [r[0] for r in db.sql("SELECT contact_id FROM contact_results "
                                        "ORDER BY 1").fetchall()]
        reasons = [r[0] for r in db.sql("SELECT __key FROM contact_reasons ORDER BY 1"
                                        ).fetchall()]
        exported = [r[0] for r in db.sql(
            f"SELECT contact_id FROM read_parquet('{root}/.retainer/export/"
            "contact_results.parquet') ORDER BY 1").fetchall()]
    csv = (root / ".retainer" / "export" / "contact_results.csv").read_text()
    return {"results": results, "reasons": reasons, "parquet": exported,
            "csv": sorted(re.findall(r"^(c\d)", csv, re.M))}


def history(project: Project) -> list[str]:
    with project.store() as store:
        rows = store.backend.fetch("SELECT DISTINCT entity_id FROM memberships "
                                   "WHERE level = 'contact' ORDER BY 1")
    return [str(r[0]) for r in rows]


def test_forgotten_ids_and_addresses_are_left_out_of_every_run(
        write_project: ProjectWriter) -> None:
    root = write_project(PROJECT, RULEBOOK, {"contacts.csv": CONTACTS})
    project = Project(root)
    project.run(AS_OF)
    assert contacts_seen(root)["results"] == ["c1", "c2", "c3"]
    forget(project, ("contact", "c1"), ("email", "bob@example.com"))
    # Bob comes back under a new id with the same address (in other letters).
    (root / "data" / "contacts.csv").write_text(CONTACTS.replace(
        "c2,a1,executive,bob@example.com", "c9,a1,executive, BOB@example.com"))
    report = project.run(datetime(2026, 12, 2))
    assert report.contacts == 1
    assert contacts_seen(root) == {"results": ["c3"], "reasons": ["c3"], "parquet": ["c3"],
                                   "csv": ["c3"]}
    assert "c9" not in history(project)
    # Account results still count every contact (facts about the company).
    with duckdb.connect(str(root / ".retainer" / "output.duckdb"), read_only=True) as db:
        assert db.sql("SELECT account_id, people FROM account_results ORDER BY 1"
                      ).fetchall() == [("a1", 2), ("a2", 1)]


def test_code_that_reads_contacts_itself_can_ask(write_project: ProjectWriter) -> None:
    project = Project(write_project(PROJECT, RULEBOOK, {"contacts.csv": CONTACTS}))
    with project.store() as store:
        assert not Forgotten.of(store)
        assert forgotten_hashes(store) == [] and store_salt(store) is None
    forget(project, ("contact", "c1"), ("email", "bob@example.com"))
    with project.store() as store:
        forgotten = Forgotten.of(store)
        salt = store_salt(store)
    assert forgotten("c1") and forgotten("c9", " Bob@Example.COM ")
    assert not forgotten("c3") and not forgotten(None, None) and not forgotten("c2")
    # The salt is the store's own: the same id hashes differently in another store.
    assert salt is not None and len(salt) == 64
    assert subject_hash(salt, "c1") != subject_hash("0" * 64, "c1")


def test_suppression_with_a_postgresql_store_and_engine(write_project: ProjectWriter,
                                                        postgres_url: str) -> None:
    dsn, schema = split_schema(postgres_url)
    settings = (f"state: '{postgres_url}'\nengine: postgres\n"
                f"postgres: {{url: '{dsn}', schema: {schema}_engine}}\n")
    root = write_project(settings + PROJECT.lstrip(), RULEBOOK, {"contacts.csv": CONTACTS})
    project = Project(root)
    forget(project, ("contact", "c1"), ("email", "bob@example.com"))
    try:
        project.run(AS_OF)
        assert contacts_seen(root)["results"] == ["c3"]
        assert history(project) == ["c3"]
    finally:
        import psycopg
        with psycopg.connect(dsn, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA IF EXISTS "{schema}_engine" CASCADE')
