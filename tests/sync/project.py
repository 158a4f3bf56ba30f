"""A small project for sync tests: N accounts whose `activity` segment follows their logins,
a `vip` tag, contacts with a `practitioner` tag; the test decides the syncs."""

from __future__ import annotations

import textwrap
from datetime import datetime, timedelta
from pathlib import Path

from retainer.project import Project
from tests.conftest import ProjectWriter

DAY = datetime(2026, 12, 1)

PROJECT = """
name: synctest
output: {include: [name]}
sources:
  accounts: {kind: accounts, from: data/accounts.csv, key: account_id, time: created_at}
  contacts: {kind: contacts, from: data/contacts.csv, key: contact_id, account: account_id, role: role}
  events: {from: data/events.csv, account: account_id, contact: user_id, time: ts}
"""
SEGMENTS = """
traits:
  logins_30d: {count: events, where: "name = 'login'", window: 30d}
segments:
  activity:
    - busy: "logins_30d >= 3"
    - quiet: "logins_30d >= 1"
    - idle: else
tags:
  vip: "name like 'VIP%'"
  practitioner: {entity: contact, when: "role = 'practitioner'"}
"""


def account_ids(count: int) -> list[str]:
    return [f"a{i:02d}" for i in range(1, count + 1)]


def data(count: int, logins: dict[str, int] | None = None, day: datetime = DAY,
         gone: tuple[str, ...] = ()) -> dict[str, str]:
    """Accounts a01…aNN (every third a VIP), two contacts each, and `logins[account]`
    logins in the days before `day` (default: one each). `gone` accounts are left out."""
    ids = [a for a in account_ids(count) if a not in gone]
    logins = logins or {}
    accounts = "account_id,name,created_at\n" + "".join(
        f"{a},{'VIP ' if int(a[1:]) % 3 == 0 else ''}Company {a},2026-01-01\n" for a in ids)
    contacts = "contact_id,account_id,role\n" + "".join(
        f"{a}-c1,{a},practitioner\n{a}-c2,{a},executive\n" for a in ids)
    events = "account_id,user_id,ts,name,feature\n"
    for account in ids:
        for n in range(logins.get(account, 1)):
            moment = day - timedelta(days=1, hours=n)
            events += f"{account},{account}-c1,{moment:%Y-%m-%d %H:%M:%S},login,\n"
    return {"accounts.csv": accounts, "contacts.csv": contacts, "events.csv": events}


def make_project(write_project: ProjectWriter, syncs: str, count: int = 6,
                 logins: dict[str, int] | None = None) -> Path:
    return write_project(PROJECT, {"segments.yml": SEGMENTS,
                                   "syncs.yml": textwrap.dedent(syncs)},
                         data(count, logins))


def rerun(root: Path, count: int, logins: dict[str, int] | None = None,
          day: datetime = DAY, gone: tuple[str, ...] = ()) -> None:
    """New source data, then a run as of `day`."""
    for name, text in data(count, logins, day, gone).items():
        (root / "data" / name).write_text(text, encoding="utf-8")
    Project(root).run(day)
