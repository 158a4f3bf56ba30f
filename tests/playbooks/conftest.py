"""A small project whose accounts move between segments over a few runs, and a real HTTP
receiver on loopback for webhook deliveries."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from retainer.playbooks.act import ActReport, act
from retainer.project import Project
from tests.sync.receiver import Receiver, running

PROJECT = """
name: acts
output: {include: [name, owner]}
sources:
  accounts: {kind: accounts, from: data/accounts.csv, key: account_id, time: created_at}
  contacts: {kind: contacts, from: data/contacts.csv, key: contact_id, account: account_id, role: role, email: email}
  events: {from: data/events.csv, account: account_id, time: ts}
  consents: {kind: consents, from: data/consents.csv, contact: contact_id, time: recorded_at}
"""
# a1 and a2 exist from the start; a3 arrives on 2026-01-12. a1 logs in on 2026-01-15.
# Runs on 01-05 (the baseline), 01-16 and 02-20 give:
#   a1: fresh → active → quiet      a2: fresh → quiet      a3: (absent) → fresh → quiet
DATA = {
    "accounts.csv": "account_id,name,owner,created_at\n"
                    "a1,Acme,ana@us.example,2026-01-01\n"
                    "a2,Globex,ben@us.example,2026-01-01\n"
                    "a3,Initech,ana@us.example,2026-01-12\n",
    "contacts.csv": "contact_id,account_id,role,email,country\n"
                    "c1,a1,practitioner,c1@acme.example,DE\n"
                    "c2,a1,executive,c2@acme.example,US\n"
                    "c3,a2,practitioner,c3@globex.example,US\n"
                    "c4,a3,practitioner,c4@initech.example,FR\n",
    "events.csv": "account_id,ts,name\na1,2026-01-15 10:00:00,login\n",
    "consents.csv": "contact_id,purpose,channel,status,legal_basis,jurisdiction,"
                    "recorded_at,source\n",
}
SEGMENTS = """
traits:
  logins_30d: {count: events, where: "name = 'login'", window: 30d}
  tenure_days: "days_between(account.created_at, as_of)"
segments:
  stage:
    - fresh:  "tenure_days <= 10"
    - active: "logins_30d >= 1"
    - quiet:  else
tags:
  busy: "logins_30d >= 1"
"""
DAYS = {"baseline": datetime(2026, 1, 5), "second": datetime(2026, 1, 16),
        "third": datetime(2026, 2, 20)}

Writer = Callable[..., Path]


def with_destinations(playbooks: str, hook: str | None = None) -> str:
    """`playbooks` (YAML text from `playbooks:` on) after what their actions need: a CSV
    outbox, a webhook `hook` that does not retry when its URL is given, and consent decided
    by the contacts' country."""
    webhook = f'  hook: {{type: webhook, url: "{hook}", retries: 0, backoff: 0}}\n' if hook else ""
    return ("\ndestinations:\n  outbox: {type: files, dir: outbox, format: csv}\n" + webhook
            + "consent: {jurisdiction: country}\n" + playbooks.lstrip("\n"))


@pytest.fixture
def make_project(write_project: Callable[..., Path]) -> Writer:
    """A project with the segments above plus `playbooks` (YAML text), run on `runs`."""

    def make(playbooks: str, runs: tuple[str, ...] = ("baseline", "second"),
             project: str = PROJECT, data: dict[str, str] | None = None,
             segments: str = SEGMENTS) -> Path:
        root = write_project(project, {"segments.yml": segments, "playbooks.yml": playbooks},
                             {**DATA, **(data or {})})
        for name in runs:
            Project(root).run(DAYS[name])
        return root

    return make


def run(root: Path, day: str) -> None:
    Project(root).run(DAYS[day])


def act_on(root: Path, dry_run: bool = False, **kwargs: Any) -> ActReport:
    return act(Project(root), dry_run=dry_run, **kwargs)


def ledger_rows(root: Path, where: str = "true") -> list[dict[str, Any]]:
    with duckdb.connect(str(root / ".retainer" / "state.duckdb"), read_only=True) as db:
        cursor = db.execute(f"SELECT * FROM ledger WHERE {where} ORDER BY playbook, "
                            "entity_id, action_index, contact_id")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def decision_rows(root: Path) -> list[dict[str, Any]]:
    with duckdb.connect(str(root / ".retainer" / "state.duckdb"), read_only=True) as db:
        cursor = db.execute("SELECT * FROM decisions ORDER BY decision_id")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on loopback (tests/sync/receiver.py), for action deliveries."""
    with running() as server:
        yield server
