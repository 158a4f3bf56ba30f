"""`retainer forget` end to end: a person with history, ledger rows, consent decisions, results,
exports, a delivered message and records synced to files and to PostgreSQL is forgotten —
afterwards no table, file or destination holds their id or address, tombstones do, and later
runs, acts and syncs with the person still in the sources do not bring them back."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import duckdb
import psycopg
import pytest
from typer.testing import CliRunner

from retainer.cli.main import app
from retainer.playbooks.act import act
from retainer.project import Project
from retainer.state.postgres_backend import split_schema
from retainer.sync.apply import SyncResult
from retainer.sync.runner import run_syncs
from tests.conftest import ProjectWriter

RETAINER = str(Path(sys.executable).parent / "retainer")
PERSON_ID, PERSON_EMAIL = "ctc-ann-0001", "ann.person@example.com"
SECRETS = (PERSON_ID, PERSON_EMAIL)
PROJECT = """
name: forgetting
output: {formats: [parquet, csv]}
sources:
  accounts: {kind: accounts, from: data/accounts.csv, key: account_id, time: created_at}
  contacts: {kind: contacts, from: data/contacts.csv, key: contact_id, account: account_id, role: role, email: email}
  events: {from: data/events.csv, account: account_id, contact: user_id, time: ts}
  consents: {kind: consents, from: data/consents.csv, contact: contact_id, time: recorded_at}
"""
RULEBOOK = """
traits:
  logins: {count: events, where: "name = 'login'", window: 30d, entity: contact}
  people: {count: contacts}
segments:
  persona:
    entity: contact
    rules:
      - active: "logins > 0"
      - idle:   else
tags:
  hands_on: {entity: contact, when: "role = 'practitioner'"}
destinations:
  outbox: {type: files, dir: outbox, format: csv}
  folder: {type: files, dir: synced, format: parquet}
  crm:    {type: postgres, url: "URL"}
consent: {jurisdiction: country}
playbooks:
  welcome:
    purpose: success
    entity: contact
    when: "persona = 'active'"
    cooldown: 1d
    actions:
      - message: {to: outbox, template: welcome, fields: [persona, logins]}
      - task: {title: "Call {logins} logins", owner: persona}
syncs:
  people_db:    {to: crm, entity: contact, mode: mirror, columns: [persona, role, logins]}
  people_files: {to: folder, entity: contact, columns: [persona, hands_on]}
"""
DATA = {
    "accounts.csv": "account_id,name,created_at\na1,Acme,2026-01-01\na2,Globex,2026-01-01\n",
    "contacts.csv": "contact_id,account_id,role,email,country\n"
                    f"{PERSON_ID},a1,practitioner,{PERSON_EMAIL},DE\n"
                    "ctc-bob-0002,a1,executive,bob@example.com,US\n"
                    "ctc-cid-0003,a2,practitioner,cid@example.com,US\n",
    "events.csv": "account_id,user_id,ts,name\n"
                  f"a1,{PERSON_ID},2026-11-28 10:00:00,login\n"
                  "a1,ctc-bob-0002,2026-11-27 10:00:00,login\n"
                  "a2,ctc-cid-0003,2026-11-26 10:00:00,login\n",
    "consents.csv": "contact_id,purpose,channel,status,legal_basis,jurisdiction,recorded_at,"
                    f"source\n{PERSON_ID},success,email,granted,consent,DE,2026-01-02,form\n",
}


def retainer(*args: str | Path, code: int = 0) -> str:
    """The command as a user runs it, in its own process."""
    done = subprocess.run([RETAINER, *map(str, args)], capture_output=True, text=True,
                          timeout=300, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    output = done.stdout + done.stderr
    assert "Traceback" not in output
    assert done.returncode == code, output[-3000:]
    return output


def quick(*args: str | Path, code: int = 0) -> str:
    """The same command in this process (for views and refusals; saves a start-up)."""
    done = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})
    assert done.exception is None or isinstance(done.exception, SystemExit), done.exception
    assert done.exit_code == code, done.output[-3000:]
    return done.stdout + done.stderr


def duckdb_dump(path: Path) -> str:
    """Every row of every table of a DuckDB file, as text."""
    with duckdb.connect(str(path), read_only=True) as db:
        tables = [r[0] for r in db.sql("SELECT table_name FROM information_schema.tables "
                                       "WHERE table_schema = 'main'").fetchall()]
        return "\n".join(f"{t}: {db.sql(_select_all(t)).fetchall()!r}" for t in tables)


def _select_all(table: str) -> str:
    return f'SELECT * FROM "{table}"'


def files_dump(*folders: Path) -> str:
    """The text of every CSV file and the rows of every Parquet file under the folders."""
    parts = []
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.suffix == ".csv":
                parts.append(path.read_text(encoding="utf-8"))
            elif path.suffix == ".parquet":
                with duckdb.connect() as db:
                    parts.append(repr(db.sql(f"SELECT * FROM '{path}'").fetchall()))
    return "\n".join(parts)


def postgres_dump(url: str) -> str:
    dsn, schema = split_schema(url)
    with psycopg.connect(dsn) as connection:
        tables = [r[0] for r in connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            [schema]).fetchall()]
        return "\n".join(repr(connection.execute(
            f'SELECT * FROM "{schema}"."{t}"').fetchall()) for t in tables)


def everything(root: Path, url: str) -> str:
    """Every store, output, export and destination; the PostgreSQL schema holds the synced
    table, and the state store too when it is kept there."""
    state = root / ".retainer"
    stores = [state / "state.duckdb"] if (state / "state.duckdb").exists() else []
    return "\n".join([*(duckdb_dump(path) for path in stores),
                      duckdb_dump(state / "output.duckdb"),
                      files_dump(state / "export", root / "outbox", root / "synced"),
                      postgres_dump(url)])


def leaked(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret.lower() in text.lower()]


def rows(root: Path, query: str) -> list[tuple[object, ...]]:
    """Rows of a query of the project's state store, wherever it is kept."""
    with Project(root).store() as store:
        return store.backend.fetch(query)


def act_and_sync(root: Path, as_of: datetime) -> None:
    """A run, then `retainer act` and `retainer sync` as the commands do them."""
    Project(root).run(as_of)
    assert act(Project(root)).ok
    results = run_syncs(Project(root))
    assert all(isinstance(r, SyncResult) and r.status == "succeeded" for r in results)


@pytest.fixture(params=["duckdb"])
def acted(request: pytest.FixtureRequest, write_project: ProjectWriter, postgres_url: str
          ) -> Path:
    """The project after a run, an act and a sync: the person is everywhere. The state
    store is a DuckDB file, or (param "postgres") kept in the PostgreSQL schema."""
    store = f"state: '{postgres_url}'\n" if request.param == "postgres" else ""
    root = write_project(store + PROJECT.lstrip(),
                         {"rules.yml": RULEBOOK.replace("URL", postgres_url)}, DATA)
    act_and_sync(root, datetime(2026, 12, 1))
    assert leaked(everything(root, postgres_url)) == list(SECRETS)
    return root


@pytest.mark.parametrize("acted", ["duckdb", "postgres"], indirect=True)
def test_forget_by_email_removes_the_person_everywhere(acted: Path, postgres_url: str
                                                       ) -> None:
    root = acted
    ledger_before = rows(root, "SELECT action_key, status FROM ledger ORDER BY 1")
    decisions_before = rows(root, "SELECT decision_id, outcome FROM decisions ORDER BY 1")
    assert rows(root, f"SELECT count(*) FROM decisions WHERE contact_id = '{PERSON_ID}'"
                ) == [(2,)]

    dry = retainer("forget", "--email", "Ann.Person@Example.com", "-p", root, "--dry-run")
    assert f"Would forget contact {PERSON_ID} and 1 address" in dry
    for line in ("2 membership intervals in history", "2 action ledger rows",
                 "2 decision log entries", "1 contact in the published results",
                 "2 exported files written again without them",
                 "2 synced records deleted at their destinations (people_db: 1, "
                 "people_files: 1)", "1 delivered action deleted at their destinations "
                 "(outbox: 1)", "dry run: nothing was changed"):
        assert line in dry
    assert leaked(everything(root, postgres_url)) == list(SECRETS)

    done = retainer("forget", "--email", "Ann.Person@Example.com", "-p", root, "--yes")
    assert "crm (sync people_db): deleted 1 record(s) from people_db" in done
    assert "folder (sync people_files): deleted 1 record(s) from people_files" in done
    assert "outbox (action " in done and "): deleted from messages" in done
    assert "✓ forgotten" in done
    assert leaked(everything(root, postgres_url)) == []

    # The actions and decisions stay, about a tombstone instead of the person.
    with Project(root).store() as store:
        salt = store.backend.fetch("SELECT secret FROM store_secrets")[0][0]
    tomb = hashlib.sha256((salt + PERSON_ID).encode()).hexdigest()
    address = hashlib.sha256((salt + PERSON_EMAIL).encode()).hexdigest()
    assert rows(root, "SELECT action_key, status FROM ledger ORDER BY 1") == ledger_before
    assert rows(root, "SELECT decision_id, outcome FROM decisions ORDER BY 1"
                ) == decisions_before
    assert rows(root, f"SELECT count(*) FROM decisions WHERE contact_id = '{tomb}'") == [(2,)]
    # Asked by the id the controller knows, the decision log answers from the tombstone.
    asked = quick("decisions", "--contact", PERSON_ID, "-p", root)
    assert f"{PERSON_ID} was forgotten on request" in asked
    assert asked.count(f"forgotten {tomb[:16]}  sent  welcome") == 1
    assert leaked(asked.replace(f"{PERSON_ID} was forgotten", "")) == []
    stones = rows(root, "SELECT subject_hash, kind, propagated FROM erasures ORDER BY kind")
    assert [(s[0], s[1]) for s in stones] == [(tomb, "contact"), (address, "email")]
    summary = json.loads(str(stones[0][2]))
    assert summary["complete"] and summary["pending"] == []
    assert summary["removed"] == {"memberships": 2, "ledger": 2, "decisions": 2, "results": 1}
    assert "complete" in quick("erasures", "-p", root)

    # The person is still in the sources: later runs, acts and syncs leave them out.
    act_and_sync(root, datetime(2026, 12, 2))
    assert leaked(everything(root, postgres_url)) == []
    with duckdb.connect(str(root / ".retainer" / "output.duckdb"), read_only=True) as db:
        assert db.sql("SELECT contact_id FROM contact_results ORDER BY 1").fetchall() == [
            ("ctc-bob-0002",), ("ctc-cid-0003",)]
        assert db.sql("SELECT people FROM account_results WHERE account_id = 'a1'"
                      ).fetchall() == [(2,)]

    # Forgetting again is harmless; so is asking by id.
    again = retainer("forget", "--contact", PERSON_ID, "-p", root, "--yes")
    assert "already forgotten on" in again and "✓ forgotten" in again
    summary = json.loads(str(rows(root, "SELECT propagated FROM erasures WHERE kind = "
                                        "'contact'")[0][0]))
    assert summary["removed"]["memberships"] == 2 and summary["complete"]


def test_a_destination_that_fails_is_reported_and_the_next_attempt_finishes(
        acted: Path, postgres_url: str) -> None:
    root = acted
    outbox = root / "outbox"
    shutil.move(outbox, root / "outbox.away")
    outbox.write_text("not a folder")              # the destination cannot be written
    done = retainer("forget", "--email", PERSON_EMAIL, "-p", root, "--yes", code=1)
    assert "outbox (action " in done and "failed: cannot write" in done
    assert "1 deletion(s) at destinations failed" in done
    assert "run the same 'retainer forget' again" in done
    # Everything else is done, and runs already leave the person out.
    assert PERSON_EMAIL not in postgres_dump(postgres_url)
    assert "unfinished" in quick("erasures", "-p", root)
    pending = json.loads(str(rows(root, "SELECT propagated FROM erasures")[0][0]))["pending"]
    assert len(pending) == 1 and pending[0][0] == "outbox"
    assert leaked(json.dumps(pending)) == []

    outbox.unlink()
    shutil.move(root / "outbox.away", outbox)
    assert leaked(files_dump(outbox)) == [PERSON_ID, PERSON_EMAIL]
    again = retainer("forget", "--email", PERSON_EMAIL, "-p", root, "--yes")
    assert "1 delivered action left to delete from an earlier attempt" in again
    assert "): deleted from messages" in again
    assert leaked(everything(root, postgres_url)) == []
    assert "unfinished" not in quick("erasures", "-p", root)


def test_people_who_cannot_be_found(write_project: ProjectWriter) -> None:
    root = write_project(PROJECT, {"rules.yml": "traits: {people: {count: contacts}}\n"},
                         DATA)
    done = retainer("forget", "--email", "nobody@example.com", "-p", root, code=1)
    assert "no email address 'nobody@example.com' in the contacts source 'contacts', the " \
           "published results or the state store" in done
    done = quick("forget", "--contact", "ctc-nobody", "-p", root, code=1)
    assert "no contact 'ctc-nobody'" in done
    assert "say whom to forget" in quick("forget", "-p", root, code=1)
    (root / "retainer.yml").write_text(PROJECT.replace(", email: email", ""))
    done = quick("forget", "--email", PERSON_EMAIL, "-p", root, code=1)
    assert "source 'contacts' declares no email column" in done
    assert "add 'email: <column>' to source 'contacts'" in done
    # Without --yes, the answer decides.
    (root / "retainer.yml").write_text(PROJECT)
    declined = subprocess.run([RETAINER, "forget", "--contact", PERSON_ID, "-p", str(root)],
                              input="n\n", capture_output=True, text=True, timeout=120)
    assert declined.returncode == 1 and "nothing was changed" in declined.stderr
    assert "no one has been forgotten" in quick("erasures", "-p", root)
