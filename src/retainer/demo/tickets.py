"""Support tickets: a steady trickle that grows as health falls, and a surge before churn."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import pyarrow as pa

from retainer.demo.accounts import Accounts
from retainer.demo.arrays import DAY, I64, NEVER, Bool, categorical, labels, numbered, timestamps
from retainer.demo.contacts import Contacts, pick_contacts
from retainer.demo.timing import sample_times

PRIORITIES: Final = ("low", "normal", "high", "urgent")
PRIORITY_CUTS: Final = np.array([-0.85, 1.10, 2.59])  # logistic quantiles ~ 30/45/18/7 %
RESOLUTION_DAYS: Final = np.array([6.0, 3.0, 1.5, 0.5])
CATEGORIES: Final = ("bug", "how_to", "billing", "outage", "feature_request")
# Rows: onboarding (first 30 days), steady state, pre-churn surge.
CATEGORY_P: Final = np.array(
    [
        [0.15, 0.60, 0.10, 0.03, 0.12],
        [0.30, 0.30, 0.10, 0.05, 0.25],
        [0.30, 0.05, 0.30, 0.25, 0.10],
    ]
)
TIER_TICKETS_PER_30D: Final = np.array([0.25, 0.7, 1.8])
TICKET_ROLE_WEIGHT: Final = np.array([1.0, 0.7, 0.15])


@dataclass(frozen=True)
class Tickets:
    """The tickets table plus the raw columns CSAT answers are derived from."""

    table: pa.Table
    account: I64
    contact: I64
    opened: I64
    resolved: I64
    priority: I64
    surge: Bool


def make_tickets(
    rng: np.random.Generator, acc: Accounts, con: Contacts, t_end: int
) -> Tickets:
    """Steady-state tickets ∝ exp(-z) plus a surge in the 60 days before a cancellation."""
    z = acc.health
    life_days = (acc.stop - acc.created) / DAY
    rate = TIER_TICKETS_PER_30D[acc.tier] * np.exp(-0.6 * z) * np.where(acc.inactive, 0.6, 1.0)
    base = rng.poisson(rate * life_days / 30.0)

    surge_lo = np.maximum(acc.created, acc.risk_at - 60 * DAY)
    surge_share = np.clip((acc.stop - surge_lo) / (60.0 * DAY), 0.0, 1.0)
    surge_n = np.where(acc.risk_at < NEVER, rng.poisson(2.5 * np.exp(-0.3 * z) * surge_share), 0)

    everyone = np.arange(acc.n, dtype=np.int64)
    account = np.concatenate([np.repeat(everyone, base), np.repeat(everyone, surge_n)])
    surge = np.arange(len(account)) >= int(base.sum())
    lo = np.where(surge, surge_lo[account], acc.created[account])
    hi = acc.stop[account]
    opened = sample_times(rng, acc, account, lo, hi, np.zeros(len(account), dtype=np.bool_))

    severity = rng.logistic(size=len(account)) - 0.5 * z[account] + 1.3 * surge
    priority = np.searchsorted(PRIORITY_CUTS, severity).astype(np.int64)
    onboarding = opened - acc.created[account] < 30 * DAY
    kind = np.where(surge, 2, np.where(onboarding, 0, 1))
    category = categorical(rng, CATEGORY_P[kind])
    resolution = rng.exponential(RESOLUTION_DAYS[priority]) * DAY
    resolved = opened + resolution.astype(np.int64)
    contact = pick_contacts(rng, con, account, opened, TICKET_ROLE_WEIGHT[con.role])

    order = np.argsort(opened, kind="stable")
    account, contact, opened = account[order], contact[order], opened[order]
    resolved, priority, surge = resolved[order], priority[order], surge[order]
    category = category[order]
    table = pa.table(
        {
            "ticket_id": numbered("T", np.arange(1, len(order) + 1, dtype=np.int64), 7),
            "account_id": acc.ids.take(pa.array(account)),
            "contact_id": con.ids.take(pa.array(contact)),
            "opened_at": timestamps(opened),
            "priority": labels(PRIORITIES, priority),
            "category": labels(CATEGORIES, category),
            "status": labels(("open", "solved"), (resolved <= t_end).astype(np.int64)),
        }
    )
    return Tickets(table, account, contact, opened, resolved, priority, surge)
