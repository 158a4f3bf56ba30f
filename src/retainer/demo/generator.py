"""Deterministic, realistic demo data for a fictional B2B SaaS company.

The generator writes eight source files that look like the exports a customer-success team
would actually have lying around (CRM, billing, product analytics, helpdesk, surveys, a
consent log and a legacy id map), so that a Retainer rulebook can be demonstrated end to end
on data whose segments mean something.

Data model
----------
* ``accounts.csv`` - one row per customer company (tier, industry, region, CSM owner, seats).
* ``contacts.csv`` - people at those companies; every account has a practitioner (the person
  who signed up, created together with the account), most have a manager, bigger tiers have
  more executives.  EU accounts have EU contacts, US accounts US contacts with a state.
* ``events.parquet`` - product analytics (logins, feature use, integrations, exports, seats,
  invites), sorted by time.  About 1 % of rows carry a legacy CRM alias instead of the account
  id and 0.05 % reference an account that exists nowhere, so a loader has something to
  resolve and something to reject.
* ``tickets.csv``, ``surveys.csv`` (NPS campaigns plus CSAT after solved tickets),
  ``subscriptions.csv`` (one per account), ``consents.csv`` (an append-only log: a later
  row for the same contact/purpose/channel supersedes an earlier one) and
  ``identities.csv`` (legacy alias -> account id).

Churn mechanics
---------------
Every account gets a latent health ``z ~ N(0, 1)`` shifted by tier (enterprise healthier).
Nothing observable is derived from anything else; instead every signal is a noisy function
of ``z`` so that a health score built from the observable signals predicts churn the way it
does in real life:

* usage intensity (events/day) ~ ``exp(0.7 z)`` times a heavy-tailed lognormal and a
  seat/tier factor; distinct features adopted and integrations connected grow with ``z``;
  about 15 % of accounts (mostly unhealthy ones) never activate: a few logins in their first
  two weeks and at most one feature;
* ticket rate ~ ``exp(-0.6 z)``; tickets get more urgent as ``z`` falls;
* NPS ~ ``7 + 1.7 z`` plus noise, CSAT likewise.

Each account then *plans* to cancel with probability ``logistic(a + tier + inactive - 1.4 z)``
at a time drawn uniformly between 30 days after signup and 90 days after ``end``.  The
intercept ``a`` is solved numerically so that about 16 % of all accounts have actually
cancelled by ``end``.  Planned cancellations after ``end`` stay ``active`` in billing but
already show the warning signs - that is the "at risk" segment a CSM wants to find.  In the
30-90 days before a planned cancellation usage decays linearly to 5 % of normal, tickets
surge (more billing/outage, more urgent) in the last 60 days and NPS answers sour.  No usage,
ticket, survey or new contact is dated after a cancellation (consent changes may be: people
still unsubscribe after their company left).  Nothing at all is dated after ``end`` except
``renews_at``, a contract date that lies in the future by nature.

Usage also follows an onboarding ramp (10 % -> 100 % over the first three weeks), a weekly
rhythm (weekends are quiet) and local business hours (EU ~ UTC+1, US ~ UTC-6).

Everything is vectorised with numpy; the only Python loops run over a handful of categories
or over rejection-sampling rounds, so 100k accounts / 10M events take seconds.  Each table
draws from its own child generator of ``np.random.default_rng(seed)``, which makes the
output byte-identical for identical arguments.

Each table is made by its own module (``accounts``, ``contacts``, ``events``, ``tickets``,
``surveys``, ``billing``, ``consents``, ``identities``), times of day and usage profiles by
``timing`` and the shared array helpers live in ``arrays``; this module ties them together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from retainer.demo.accounts import accounts_table, make_accounts
from retainer.demo.billing import subscriptions_table
from retainer.demo.consents import consents_table
from retainer.demo.contacts import make_contacts
from retainer.demo.events import make_events
from retainer.demo.identities import make_identities
from retainer.demo.surveys import make_surveys
from retainer.demo.tickets import make_tickets

__all__ = ["DemoSummary", "generate"]

EVENTS_PER_ACCOUNT: Final = 250
EPOCH: Final = datetime(1970, 1, 1)

SOURCE_FILES: Final = {
    "accounts": "accounts.csv",
    "contacts": "contacts.csv",
    "events": "events.parquet",
    "tickets": "tickets.csv",
    "surveys": "surveys.csv",
    "subscriptions": "subscriptions.csv",
    "consents": "consents.csv",
    "identities": "identities.csv",
}


@dataclass(frozen=True)
class DemoSummary:
    """What :func:`generate` wrote; counts are rows per file (``churned`` = cancelled)."""

    accounts: int
    contacts: int
    events: int
    tickets: int
    surveys: int
    churned: int
    end: datetime
    files: dict[str, Path]


def _normalise_end(end: datetime | date | None) -> datetime:
    """Naive UTC datetime at whole seconds; a date means midnight UTC of that date."""
    if end is None:
        end = datetime.now(UTC).date()
    if isinstance(end, datetime):
        if end.tzinfo is not None:
            end = end.astimezone(UTC).replace(tzinfo=None)
        return end.replace(microsecond=0)
    return datetime(end.year, end.month, end.day)


def _epoch(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(seconds=1)


def _write(table: pa.Table, path: Path) -> None:
    if path.suffix == ".parquet":
        pq.write_table(table, path, compression="zstd")
    else:
        pacsv.write_csv(table, path, pacsv.WriteOptions(batch_size=65_536))


def generate(
    out_dir: Path,
    *,
    accounts: int = 400,
    events: int | None = None,
    seed: int = 7,
    end: datetime | date | None = None,
) -> DemoSummary:
    """Write the demo sources into ``out_dir`` and return what was written.

    ``events`` is the exact number of product events (default ``250 * accounts``); ``end``
    is the last moment of data (naive UTC; default today 00:00 UTC).  Identical arguments
    produce byte-identical files.
    """
    if accounts < 1:
        raise ValueError("accounts must be at least 1")
    target = EVENTS_PER_ACCOUNT * accounts if events is None else events
    if target < 0:
        raise ValueError("events must not be negative")
    end_dt = _normalise_end(end)
    t_end = _epoch(end_dt)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    # Independent streams per table: e.g. a different event count leaves accounts unchanged.
    (r_acc, r_con, r_ids, r_evt, r_tix, r_srv, r_sub, r_cns) = np.random.default_rng(
        seed
    ).spawn(8)
    acc = make_accounts(r_acc, accounts, t_end)
    accounts_rows = accounts_table(r_acc, acc)
    con, contacts_table = make_contacts(r_con, acc)
    alias_of, alias_ids, identities_table = make_identities(r_ids, acc)
    events_table = make_events(r_evt, acc, con, alias_of, alias_ids, target, t_end)
    tickets = make_tickets(r_tix, acc, con, t_end)
    surveys_table = make_surveys(r_srv, acc, con, tickets, t_end)

    tables = {
        "accounts": accounts_rows,
        "contacts": contacts_table,
        "events": events_table,
        "tickets": tickets.table,
        "surveys": surveys_table,
        "subscriptions": subscriptions_table(r_sub, acc, t_end),
        "consents": consents_table(r_cns, con, t_end),
        "identities": identities_table,
    }
    files: dict[str, Path] = {}
    for source, table in tables.items():
        files[source] = out_dir / SOURCE_FILES[source]
        _write(table, files[source])
    return DemoSummary(
        accounts=acc.n,
        contacts=con.n,
        events=events_table.num_rows,
        tickets=tickets.table.num_rows,
        surveys=surveys_table.num_rows,
        churned=int(acc.churned.sum()),
        end=end_dt,
        files=files,
    )
