"""A small project whose every measure can be computed by hand (see the comments)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from retainer.project import Project
from tests.conftest import ProjectWriter

PROJECT = """
name: tiny
output: {include: [tier, seats]}
sources:
  accounts: {kind: accounts, from: data/accounts.csv, key: account_id, time: created_at}
  contacts: {kind: contacts, from: data/contacts.csv, key: contact_id, account: account_id, role: role}
  identities: {kind: identities, from: data/identities.csv, alias: source_id, account: account_id}
  events: {from: data/events.csv, account: account_id, contact: user_id, time: ts}
  surveys: {kind: surveys, from: data/surveys.csv, contact: contact_id, time: answered_at}
  subscriptions: {kind: subscriptions, from: data/subscriptions.csv, account: account_id, time: started_at}
"""
RULEBOOK = {
    "main.yml": """
        traits:
          logins_30d: {count: events, where: "name = 'login'", window: 30d}
        segments:
          plan:
            - big: "account.tier = 'gold'"
            - small: else
        tags:
          active: "logins_30d > 0"
        """,
    "measures.yml": """
        measures:
          nps_by_plan:       {metric: nps, by: plan}
          csat_all:          {metric: csat}
          retention_by_plan: {metric: logo_retention, horizon: 30d, by: plan}
          grr:               {metric: gross_revenue_retention, horizon: 30d}
          nrr:               {metric: net_revenue_retention, horizon: 30d}
          expansion:         {metric: expansion_rate, horizon: 30d}
          logins_by_plan:    {metric: mean, trait: logins_30d, by: plan}
          active_by_seats:   {metric: rate, trait: active, by: {trait: seats, buckets: [10]}}
          nps_by_activity:   {metric: nps, by: active, window: 30d}
        """,
}
DATA = {
    # a1 and a2 are gold (plan big); a3, a4, a5 silver (plan small).
    "accounts.csv": "account_id,name,tier,seats,created_at\n"
                    "a1,Acme,gold,20,2026-01-01\na2,Bolt,gold,5,2026-01-01\n"
                    "a3,Cogs,silver,8,2026-01-01\na4,Dyne,silver,50,2026-01-01\n"
                    "a5,Echo,silver,3,2026-01-01\n",
    "contacts.csv": "contact_id,account_id,role\nc1,a1,practitioner\nc2,a1,manager\n"
                    "c3,a2,practitioner\nc4,a3,practitioner\nc5,a4,practitioner\n"
                    "c6,a5,practitioner\n",
    "identities.csv": "source_id,account_id\nLEGACY-3,a3\n",
    # As of 2026-06-01, logins in the last 30 days: a1 3, a2 1, a3 0, a4 2, a5 0.
    "events.csv": "account_id,user_id,ts,name,feature\n"
                  "a1,c1,2026-05-05 10:00:00,login,\na1,c1,2026-05-10 10:00:00,login,\n"
                  "a1,c2,2026-05-20 10:00:00,login,\na2,c3,2026-05-25 10:00:00,login,\n"
                  "a4,c5,2026-05-15 10:00:00,login,\na4,c5,2026-05-16 10:00:00,login,\n",
    # NPS as of 2026-06-01 (window 365 days, each respondent's latest answer):
    #   big: c1 10 (its older 3 is superseded), c2 9, c3 5 → 2 promoters, 1 detractor of 3
    #   small: c4 8, c5 2 → 0 promoters, 1 detractor of 2 (c6's answers are too late / old)
    # CSAT (window 90 days, every answer): 5, 2, 4 → 2 of 3 satisfied (c3's is too old).
    "surveys.csv": "response_id,contact_id,kind,score,answered_at\n"
                   "r1,c1,nps,10,2026-05-01 09:00:00\nr2,c1,nps,3,2026-03-01 09:00:00\n"
                   "r3,c2,nps,9,2026-05-10 09:00:00\nr4,c3,nps,5,2026-04-01 09:00:00\n"
                   "r5,c4,nps,8,2026-05-20 09:00:00\nr6,c5,nps,2,2026-05-25 09:00:00\n"
                   "r7,c6,nps,10,2026-06-15 09:00:00\nr8,c6,nps,10,2025-01-01 09:00:00\n"
                   "r9,c4,csat,5,2026-05-20 10:00:00\nr10,c5,csat,2,2026-05-21 10:00:00\n"
                   "r11,c6,csat,4,2026-05-22 10:00:00\nr12,c3,csat,4,2026-02-01 10:00:00\n",
    # Paying on 2026-06-01: a1 100, a2 50, a3 80 (through its legacy id), a5 30; a4 left in
    # May. On 2026-07-01: a1 100, a2 0 (cancelled 06-10), a3 100 (a second plan from 06-15),
    # a5 30 (cancels only in August).
    "subscriptions.csv": "subscription_id,account_id,mrr,started_at,cancelled_at\n"
                         "s1,a1,100,2026-01-01,\ns2,a2,50,2026-01-01,2026-06-10\n"
                         "s3,LEGACY-3,80,2026-01-01,\ns4,a3,20,2026-06-15,\n"
                         "s5,a4,200,2026-01-01,2026-05-01\ns6,a5,30,2026-01-01,2026-08-01\n",
}
AS_OF = datetime(2026, 6, 1)
LATEST = datetime(2026, 8, 1)


@pytest.fixture
def tiny(write_project: ProjectWriter) -> Project:
    """The project with two runs: 2026-06-01 and the latest, 2026-08-01."""
    project = Project(write_project(project=PROJECT, rulebook=RULEBOOK, data=DATA))
    project.run(AS_OF)
    project.run(LATEST)
    return project


def write_tiny(write_project: ProjectWriter, measures: str, root: Path | None = None) -> Path:
    """The same project with other measures."""
    return write_project(project=PROJECT, rulebook={**RULEBOOK, "measures.yml": measures},
                         data=DATA, root=root)
