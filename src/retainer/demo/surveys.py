"""Survey answers: NPS campaigns and CSAT ratings after solved tickets, with comments."""

from __future__ import annotations

from typing import Final

import numpy as np
import pyarrow as pa

from retainer.demo.accounts import Accounts
from retainer.demo.arrays import DAY, HOUR, I64, Bool, labels, numbered, timestamps
from retainer.demo.contacts import Contacts, pick_contacts
from retainer.demo.tickets import Tickets
from retainer.demo.timing import sample_times

NPS_ROLE_WEIGHT: Final = np.array([0.6, 1.0, 0.9])
NPS_COMMENTS: Final = (
    ("Too many bugs lately", "Pricing is hard to justify", "Missing integrations we need",
     "Support takes too long to answer", "Hard to get the team to use it"),
    ("Good, but reporting could be faster", "Does the job", "Onboarding took a while",
     "Would like more dashboard options"),
    ("Love the dashboards", "Great support team", "Saves us hours every week",
     "Our whole team relies on it", "The workflows are fantastic"),
)
CSAT_COMMENTS: Final = (
    ("Issue is not really fixed", "Took far too long", "Had to explain it three times"),
    ("Fine", "Solved eventually"),
    ("Quick and helpful", "Thanks, works now", "Excellent explanation"),
)
COMMENT_P: Final = 0.45


def make_surveys(
    rng: np.random.Generator, acc: Accounts, con: Contacts, tickets: Tickets, t_end: int
) -> pa.Table:
    nps_contact, nps_ts, nps_score = _nps_answers(rng, acc, con)
    csat_contact, csat_ts, csat_score = _csat_answers(rng, acc, tickets, t_end)
    contact = np.concatenate([nps_contact, csat_contact])
    ts = np.concatenate([nps_ts, csat_ts])
    score = np.concatenate([nps_score, csat_score])
    is_csat = np.arange(len(ts)) >= len(nps_ts)
    comment = _comments(rng, score, is_csat)

    order = np.argsort(ts, kind="stable")
    return pa.table(
        {
            "response_id": numbered("R", np.arange(1, len(ts) + 1, dtype=np.int64), 7),
            "contact_id": con.ids.take(pa.array(contact[order])),
            "kind": labels(("nps", "csat"), is_csat[order].astype(np.int64)),
            "score": pa.array(score[order]),
            "answered_at": timestamps(ts[order]),
            "comment": comment.take(pa.array(order)),
        }
    )


def _nps_answers(
    rng: np.random.Generator, acc: Accounts, con: Contacts
) -> tuple[I64, I64, I64]:
    """NPS campaigns: most accounts answer now and then once they are a month old."""
    lo = acc.created + 30 * DAY
    eligible = lo < acc.stop
    responds = eligible & (rng.random(acc.n) < np.where(acc.inactive, 0.3, 0.7))
    years = np.maximum(acc.stop - lo, 0) / (365.0 * DAY)
    count = np.where(responds, 1 + rng.poisson(1.0 * years), 0)
    account = np.repeat(np.arange(acc.n, dtype=np.int64), count)
    ts = sample_times(
        rng, acc, account, lo[account], acc.stop[account], np.zeros(len(account), np.bool_)
    )
    contact = pick_contacts(rng, con, account, ts, NPS_ROLE_WEIGHT[con.role])
    # Sentiment sours as a planned cancellation approaches.
    closeness = np.clip(1.0 - (acc.risk_at[account] - ts) / (90.0 * DAY), 0.0, 1.0)
    latent = 7.0 + 1.7 * acc.health[account] - 3.0 * closeness + rng.normal(0, 1.4, len(ts))
    return contact, ts, np.clip(np.round(latent), 0, 10).astype(np.int64)


def _csat_answers(
    rng: np.random.Generator, acc: Accounts, tickets: Tickets, t_end: int
) -> tuple[I64, I64, I64]:
    """About a third of solved tickets get a CSAT rating shortly after resolution."""
    answered = tickets.resolved + (rng.exponential(8.0, len(tickets.resolved)) * HOUR).astype(
        np.int64
    )
    take = (rng.random(len(answered)) < 0.35) & (answered <= t_end)
    take &= answered <= acc.stop[tickets.account]
    rows = np.flatnonzero(take)
    latent = (
        4.4
        + 0.5 * acc.health[tickets.account[rows]]
        - 0.4 * (tickets.priority[rows] >= 2)
        - 0.8 * tickets.surge[rows]
        + rng.normal(0, 0.8, len(rows))
    )
    score = np.clip(np.round(latent), 1, 5).astype(np.int64)
    return tickets.contact[rows], answered[rows], score


def _comments(rng: np.random.Generator, score: I64, is_csat: Bool) -> pa.Array:
    """Optional free text matching the score bucket (detractor / passive / promoter)."""
    bucket = np.where(
        is_csat,
        np.digitize(score, [3, 5]),  # 1-2 / 3-4 / 5
        np.digitize(score, [7, 9]),  # 0-6 / 7-8 / 9-10
    )
    texts: list[str] = []
    offsets = np.zeros((2, 3), dtype=np.int64)
    sizes = np.zeros((2, 3), dtype=np.int64)
    for k, pools in enumerate((NPS_COMMENTS, CSAT_COMMENTS)):
        for b, pool in enumerate(pools):
            offsets[k, b], sizes[k, b] = len(texts), len(pool)
            texts.extend(pool)
    kind = is_csat.astype(np.int64)
    pick = offsets[kind, bucket] + np.floor(
        rng.random(len(score)) * sizes[kind, bucket]
    ).astype(np.int64)
    silent = rng.random(len(score)) >= COMMENT_P
    return pa.array(texts, pa.string()).take(pa.array(pick, mask=silent))
