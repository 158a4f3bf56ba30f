"""An act opens the project's engine for its source reads once, and every read still sees
the source as it is at that moment: the engine is counted as it is built (the real one,
which then reads), on the embedded DuckDB and on PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from retainer.engines.duckdb import DuckDBEngine
from retainer.engines.postgres import PostgresEngine
from retainer.playbooks.act import ActReport
from retainer.project import Project
from retainer.state.postgres_backend import split_schema
from tests.playbooks.conftest import Writer, act_on, decision_rows, ledger_rows
from tests.playbooks.test_act_postgres import MESSAGES, PROJECT, database, insert

__all__ = ["database"]  # the fixture, shared with the PostgreSQL act test

CONSENTS = ("contact_id,purpose,channel,status,legal_basis,jurisdiction,recorded_at,source\n"
            "c3,marketing,email,denied,consent,US-NY,2025-12-01,preference_center\n"
            "c4,marketing,email,granted,consent,FR,2026-01-10,signup_form\n")
# Roles make validate's check read the contacts source, as the plan and dispatch do; the
# messages make dispatch (and the dry run's preview) read the consents.
ROLES = MESSAGES.replace("fields: [name]}", "fields: [name], roles: [practitioner, "
                                            "executive], contact_fields: [country]}")


class SourceEngines:
    """The engines built to read sources: in-memory DuckDB engines that attached sources,
    or PostgreSQL engines (each one a connection and the work schema's lock)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        # The engines themselves, kept: a closed engine's id could be reused by the next.
        self.duckdb: list[DuckDBEngine] = []
        self.postgres = 0
        attach, build = DuckDBEngine.attach_sources, PostgresEngine.__init__

        def attached(engine: DuckDBEngine, rulebook: Any) -> Any:
            if not any(known is engine for known in self.duckdb):
                self.duckdb.append(engine)
            return attach(engine, rulebook)

        def built(engine: PostgresEngine, *args: Any, **kwargs: Any) -> None:
            self.postgres += 1
            build(engine, *args, **kwargs)

        monkeypatch.setattr(DuckDBEngine, "attach_sources", attached)
        monkeypatch.setattr(PostgresEngine, "__init__", built)

    def reset(self) -> None:
        self.duckdb.clear()
        self.postgres = 0


@pytest.fixture
def engines(monkeypatch: pytest.MonkeyPatch) -> SourceEngines:
    return SourceEngines(monkeypatch)


def test_one_duckdb_engine_per_act_and_per_dry_run(make_project: Writer,
                                                   engines: SourceEngines) -> None:
    root = make_project(ROLES, data={"consents.csv": CONSENTS})
    engines.reset()
    dry = act_on(root, dry_run=True)
    assert len(engines.duckdb) == 1
    assert {i.contact_id: dry.consent[i.key] for i in dry.plan.firing()}["c4"] == \
        "allowed: granted 2026-01-10 via signup_form (consent)"

    engines.reset()
    report = act_on(root)
    assert report.ok and len(engines.duckdb) == 1
    assert {r["contact_id"]: r["status"] for r in ledger_rows(root)} == {
        "c1": "suppressed", "c2": "sent", "c3": "suppressed", "c4": "sent"}


def test_a_withdrawal_written_during_the_act_stops_its_dispatch(
        make_project: Writer, engines: SourceEngines) -> None:
    root = make_project(ROLES, data={"consents.csv": CONSENTS})
    moment = datetime(2026, 1, 16, 9, 0, 0, 250_000)
    calls: list[datetime] = []

    def clock() -> datetime:
        # The act asks the time to plan, then to dispatch: in between, once the plan has
        # read the contacts through the act's engine, c4 withdraws and c2 moves to Germany
        # (opt-in, and c2 granted nothing).
        calls.append(moment)
        if len(calls) == 2:
            with (root / "data" / "consents.csv").open("a") as handle:
                handle.write(f"c4,marketing,email,withdrawn,consent,FR,{moment},form\n")
            contacts = root / "data" / "contacts.csv"
            contacts.write_text(contacts.read_text().replace("c2@acme.example,US",
                                                             "c2@acme.example,DE"))
        return moment

    engines.reset()
    report = act_on(root, clock=clock)
    assert report.ok and len(engines.duckdb) == 1 and len(calls) >= 2
    assert {d["contact_id"]: (d["outcome"], d["reason"], d["jurisdiction"])
            for d in decision_rows(root)} == {
        "c1": ("suppressed", "EU marketing is opt-in and no consent is recorded", "DE"),
        "c2": ("suppressed", "EU marketing is opt-in and no consent is recorded", "DE"),
        "c3": ("suppressed", "denied 2025-12-01 via preference_center", "US-NY"),
        "c4": ("suppressed", "withdrawn 2026-01-16 via form", "FR")}
    assert {r["status"] for r in ledger_rows(root)} == {"suppressed"}
    assert not (root / "outbox").exists()


@pytest.fixture
def postgres_project(make_project: Writer, postgres_url: str,
                     database: psycopg.Connection[Any]) -> Path:
    dsn, schema = split_schema(postgres_url)
    return make_project(ROLES, project=PROJECT.format(dsn=dsn, schema=schema))


def timed(action: Callable[[], ActReport]) -> tuple[ActReport, float]:
    start = time.perf_counter()
    report = action()
    return report, time.perf_counter() - start


def test_one_postgres_engine_per_act_each_read_fresh(
        postgres_project: Path, database: psycopg.Connection[Any],
        engines: SourceEngines) -> None:
    root = postgres_project
    engines.reset()
    dry, seconds = timed(lambda: act_on(root, dry_run=True))
    assert engines.postgres == 1
    assert {i.contact_id: dry.consent[i.key] for i in dry.plan.firing()}["c4"] == \
        "allowed: granted 2026-01-10 via signup_form (consent)"
    print(f"dry run on PostgreSQL: {seconds:.3f}s")

    moment = datetime(2026, 1, 16, 9, 0, 0, 250_000)
    calls: list[datetime] = []

    def clock() -> datetime:
        calls.append(moment)
        if len(calls) == 2:  # after the plan read the contacts, before dispatch reads
            insert(database, "consent_events", [(
                "c4", "marketing", "email", "withdrawn", "consent", "FR",
                moment - timedelta(microseconds=1), "preference_center")])
            database.execute("UPDATE crm_contacts SET country = 'DE' WHERE contact_id = 'c2'")
        return moment

    engines.reset()
    report, seconds = timed(lambda: act_on(root, clock=clock))
    print(f"act on PostgreSQL: {seconds:.3f}s")
    assert report.ok and engines.postgres == 1 and len(calls) >= 2
    assert {d["contact_id"]: (d["outcome"], d["jurisdiction"]) for d in decision_rows(root)
            } == {"c1": ("suppressed", "DE"), "c2": ("suppressed", "DE"),
                  "c3": ("suppressed", "US-NY"), "c4": ("suppressed", "FR")}
    [c4] = [d for d in decision_rows(root) if d["contact_id"] == "c4"]
    assert c4["reason"] == "withdrawn 2026-01-16 via preference_center"
    assert not (root / "outbox").exists()
    # The act let go of the engine: the work schema is free for the next run.
    assert Project(root).run(datetime(2026, 1, 18)).accounts == 3


def test_a_postgres_act_drops_the_copies_of_file_sources_it_loaded(
        make_project: Writer, postgres_url: str) -> None:
    """On `engine: postgres` an act loads the file sources it reads into the work schema:
    they hold the sources' people (addresses, countries), and go once the act has read them."""
    from tests.playbooks.conftest import PROJECT as FILES_PROJECT
    dsn, schema = split_schema(postgres_url)
    project = FILES_PROJECT.replace(
        "name: acts\n", f'name: acts\nengine: postgres\npostgres: {{url: "{dsn}", '
                        f"schema: {schema}}}\n")
    root = make_project(ROLES, project=project, data={"consents.csv": CONSENTS})

    def copies() -> list[str]:
        with psycopg.connect(dsn) as connection:
            return sorted(str(name) for name, in connection.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
                "AND table_name LIKE 'src\\_%%'", [schema]))

    assert "src_contacts" in copies()  # the run's work, kept until the next run
    report = act_on(root)
    assert report.ok and {r["contact_id"]: r["status"] for r in ledger_rows(root)} == {
        "c1": "suppressed", "c2": "sent", "c3": "suppressed", "c4": "sent"}
    assert copies() == []
    assert Project(root).run(datetime(2026, 1, 18)).accounts == 3  # the run loads its own
    assert "src_contacts" in copies()
    Project(root).catalog()  # what `retainer validate` reads the sources through
    assert copies() == []

    # A reader whose connection is lost cannot drop its copies (the next run replaces them):
    # closing it says nothing more, so the error that stopped the reading is the one shown.
    from retainer.consent.sources import SourceReader
    reader = SourceReader(Project(root).rulebook)
    engine, _ = reader.read(["contacts"])
    assert isinstance(engine, PostgresEngine)
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [engine.connection.info.backend_pid])
    reader.close()
    assert engine.connection.closed
