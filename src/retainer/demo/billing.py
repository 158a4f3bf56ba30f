"""Billing: one per-seat subscription per account, renewing on its yearly anniversary."""

from __future__ import annotations

from typing import Final

import numpy as np
import pyarrow as pa

from retainer.demo.accounts import SEAT_MEDIAN, Accounts
from retainer.demo.arrays import DAY, I64, labels, numbered, timestamps

PLANS: Final = ("starter", "growth", "enterprise")
PRICE_PER_SEAT: Final = np.array([29.0, 42.0, 55.0])


def _add_years(ts: I64, years: I64) -> I64:
    """Calendar anniversaries: same month/day/time ``years`` later (Feb 29 -> Feb 28)."""
    secs = ts % DAY
    day = (ts // DAY).astype("datetime64[D]")
    month = day.astype("datetime64[M]")
    dom = (day - month.astype("datetime64[D]")).astype(np.int64)
    target = month + (12 * years).astype("timedelta64[M]")
    first = target.astype("datetime64[D]")
    days_in_month = ((target + 1).astype("datetime64[D]") - first).astype(np.int64)
    out = first + np.minimum(dom, days_in_month - 1).astype("timedelta64[D]")
    shifted: I64 = out.astype(np.int64) * DAY + secs
    return shifted


def _next_anniversary(start: I64, after: I64) -> I64:
    """First yearly anniversary of ``start`` strictly after ``after`` (at least one year)."""
    elapsed = (after - start) / (365.2425 * DAY)
    years = np.maximum(np.floor(elapsed).astype(np.int64) - 1, 1)
    for _ in range(4):  # the estimate is at most a year short; each round fixes one
        years = np.where(_add_years(start, years) <= after, years + 1, years)
    return _add_years(start, years)


def subscriptions_table(rng: np.random.Generator, acc: Accounts, t_end: int) -> pa.Table:
    """One subscription per account starting at signup, priced per seat with volume discount."""
    discount = (acc.seats / SEAT_MEDIAN[acc.tier]) ** -0.08
    mrr = np.round(
        PRICE_PER_SEAT[acc.tier] * acc.seats * discount * rng.uniform(0.9, 1.05, acc.n), 2
    )
    started = acc.created
    # Cancelled contracts run to the end of the paid term, so renews_at is that term's end.
    renews = _next_anniversary(started, np.where(acc.churned, acc.risk_at, t_end))
    return pa.table(
        {
            "subscription_id": numbered("S", np.arange(1, acc.n + 1, dtype=np.int64), 6),
            "account_id": acc.ids,
            "plan": labels(PLANS, acc.tier),
            "status": labels(("active", "cancelled"), acc.churned.astype(np.int64)),
            "mrr": pa.array(mrr),
            "seats": pa.array(acc.seats),
            "started_at": timestamps(started),
            "renews_at": timestamps(renews),
            "cancelled_at": timestamps(np.where(acc.churned, acc.risk_at, 0), null=~acc.churned),
        }
    )
