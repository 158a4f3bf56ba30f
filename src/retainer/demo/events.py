"""Product events: logins, feature use, integrations, exports, seats and invites.

Most rows are regular activity spread over the accounts in proportion to their usage
intensity; milestones (integrations, seats, invites) and the few clicks of accounts that
never activate are counted per account.  A small share arrives under legacy or unknown
account ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import pyarrow as pa

from retainer.demo.accounts import HISTORY_DAYS, SEAT_MEDIAN, Accounts
from retainer.demo.arrays import (
    DAY,
    F64,
    HOUR,
    I64,
    Bool,
    labels,
    numbered,
    sigmoid,
    timestamps,
)
from retainer.demo.contacts import Contacts, pick_contacts
from retainer.demo.timing import exposure_days, sample_times

EVENT_NAMES: Final = (
    "login", "feature_used", "integration_connected", "report_exported", "seat_added",
    "invite_sent",
)
LOGIN, FEATURE_USED, INTEGRATION, REPORT, SEAT_ADDED, INVITE = range(6)
FEATURES: Final = (
    "dashboards", "reports", "alerts", "exports", "segments", "workflows", "integrations",
    "playbooks", "api", "sso",
)
FEATURE_POP: Final = np.array([0.20, 0.15, 0.12, 0.10, 0.10, 0.09, 0.08, 0.07, 0.05, 0.04])
# Bigger customers adopt the platform features (api, sso) much earlier.
FEATURE_TIER_BOOST: Final = np.array(
    [[0.0] * 10, [0.0] * 8 + [0.4, 0.6], [0.0] * 8 + [1.0, 1.5]]
)
TIER_EVENTS_PER_DAY: Final = np.array([3.0, 8.0, 25.0])
ALIAS_EVENT_SHARE: Final = 0.05  # of an aliased account's events -> ~1 % of all events
UNKNOWN_EVENT_SHARE: Final = 0.0005
FIXED_EVENT_CAP: Final = 0.25  # milestones may use at most this share of the event budget
USER_ROLE_WEIGHT: Final = np.array([1.0, 0.25, 0.03])


@dataclass
class _EventParts:
    """Rows of one kind of event before times are drawn."""

    account: I64
    name: I64
    lo: I64
    hi: I64
    shaped: Bool


def _fixed_event_counts(
    rng: np.random.Generator, acc: Accounts, con: Contacts, budget: int
) -> tuple[dict[int, I64], Bool]:
    """Per-account counts of milestone events and the invite mask over contacts.

    Milestones are counted per account (an integration is connected a few times, not in
    proportion to clicks); if they would crowd out regular usage they are thinned.
    """
    active = ~acc.inactive
    z = acc.health
    years = (acc.stop - acc.created) / (365.0 * DAY)
    counts: dict[int, I64] = {
        LOGIN: np.where(acc.inactive, 1 + rng.poisson(2.0, acc.n), 0),
        FEATURE_USED: np.where(acc.inactive, rng.random(acc.n) < 0.5, 0).astype(np.int64),
        INTEGRATION: np.where(
            active, np.minimum(rng.poisson(0.5 * np.exp(0.8 * z) * (1 + acc.tier)), 10), 0
        ),
        SEAT_ADDED: np.where(
            active, np.minimum(rng.poisson(1.2 * years * np.exp(0.5 * z) * (1 + acc.tier)), 30), 0
        ),
    }
    # Every colleague of an active account who joined after signup was invited (mostly).
    invites = (
        (np.arange(con.n) > con.block_start[con.account])
        & active[con.account]
        & (rng.random(con.n) < 0.75)
    )
    total = sum(int(c.sum()) for c in counts.values()) + int(invites.sum())
    cap = int(budget * FIXED_EVENT_CAP)
    if total > cap:
        keep = cap / total
        counts = {k: rng.binomial(c, keep).astype(np.int64) for k, c in counts.items()}
        invites &= rng.random(con.n) < keep
    return counts, invites


def _activity_counts(rng: np.random.Generator, acc: Accounts, budget: int) -> I64:
    """Split the remaining budget over active accounts ∝ intensity x exposure (multinomial)."""
    intensity = (
        TIER_EVENTS_PER_DAY[acc.tier]
        * np.sqrt(acc.seats / SEAT_MEDIAN[acc.tier])
        * np.exp(0.7 * acc.health)
        * rng.lognormal(0.0, 0.8, acc.n)
    )
    weight = np.where(acc.inactive, 0.0, intensity * exposure_days(acc))
    if budget <= 0 or weight.sum() <= 0:
        return np.zeros(acc.n, dtype=np.int64)
    return rng.multinomial(budget, weight / weight.sum()).astype(np.int64)


def _activity_names(rng: np.random.Generator, acc: Accounts, account: I64) -> I64:
    """login / report_exported / feature_used; healthy accounts click deeper per login."""
    z = acc.health
    p_login = np.clip(0.42 - 0.06 * z, 0.25, 0.6)[account]
    p_report = np.clip(0.05 + 0.02 * z, 0.01, 0.1)[account]
    u = rng.random(len(account))
    return np.where(u < p_login, LOGIN, np.where(u < p_login + p_report, REPORT, FEATURE_USED))


def _feature_choice(rng: np.random.Generator, acc: Accounts, account: I64) -> I64:
    """Each account adopts its own ordered set of features; depth grows with health."""
    n = acc.n
    keys = (
        np.log(FEATURE_POP)[None, :]
        + FEATURE_TIER_BOOST[acc.tier]
        + rng.gumbel(size=(n, len(FEATURES)))
    )
    order = np.argsort(-keys, axis=1).astype(np.int8)  # Gumbel top-k = weighted shuffle
    share = sigmoid(0.3 + 1.1 * acc.health + 0.5 * rng.standard_normal(n))
    depth = np.where(acc.inactive, 1, 2 + rng.binomial(len(FEATURES) - 2, share))
    # Top-ranked features get most of the clicks.
    rank = np.floor(depth[account] * rng.random(len(account)) ** 1.6).astype(np.int64)
    return order[account, rank].astype(np.int64)


def make_events(
    rng: np.random.Generator,
    acc: Accounts,
    con: Contacts,
    alias_of: I64,
    alias_ids: pa.Array,
    target: int,
    t_end: int,
) -> pa.Table:
    n_unknown = round(target * UNKNOWN_EVENT_SHARE)
    budget = target - n_unknown
    fixed, invites = _fixed_event_counts(rng, acc, con, budget)
    n_fixed = sum(int(c.sum()) for c in fixed.values()) + int(invites.sum())
    activity = _activity_counts(rng, acc, budget - n_fixed)

    everyone = np.arange(acc.n, dtype=np.int64)
    parts: list[_EventParts] = []
    act_account = np.repeat(everyone, activity)
    parts.append(_window_part(acc, act_account, _activity_names(rng, acc, act_account), True))
    for kind, counts in fixed.items():
        rows = np.repeat(everyone, counts)
        stalled = kind in (LOGIN, FEATURE_USED)  # the fixed logins/features are stalled ones
        part = _window_part(acc, rows, np.full(len(rows), kind, dtype=np.int64), not stalled)
        if stalled:  # stalled accounts only poke around in their first two weeks
            part.hi = np.minimum(part.hi, part.lo + 14 * DAY)
        if kind == INTEGRATION:  # integrations get connected early in the relationship
            early = (7 + rng.exponential(45.0, len(rows))) * DAY
            part.hi = np.minimum(part.hi, part.lo + early.astype(np.int64))
        parts.append(part)

    account = np.concatenate([p.account for p in parts])
    name = np.concatenate([p.name for p in parts])
    ts = sample_times(
        rng, acc, account,
        np.concatenate([p.lo for p in parts]),
        np.concatenate([p.hi for p in parts]),
        np.concatenate([p.shaped for p in parts]),
    )
    user = pick_contacts(rng, con, account, ts, _usage_weights(rng, con))

    # Invites are sent by the signup practitioner shortly before the colleague joins.
    invited = np.flatnonzero(invites)
    inv_account = con.account[invited]
    delay = (rng.exponential(3.0, len(invited)) * HOUR).astype(np.int64)
    inv_ts = np.maximum(con.created[invited] - delay, acc.created[inv_account])
    account = np.concatenate([account, inv_account])
    name = np.concatenate([name, np.full(len(invited), INVITE, dtype=np.int64)])
    ts = np.concatenate([ts, inv_ts])
    user = np.concatenate([user, con.block_start[inv_account]])

    feature = np.full(len(account), -1, dtype=np.int64)
    used = np.flatnonzero(name == FEATURE_USED)
    feature[used] = _feature_choice(rng, acc, account[used])
    return _events_table(
        rng, acc, con, alias_of, alias_ids, account, name, ts, user, feature, n_unknown, t_end
    )


def _window_part(acc: Accounts, account: I64, name: I64, shaped: bool) -> _EventParts:
    return _EventParts(
        account=account,
        name=name,
        lo=acc.created[account],
        hi=acc.stop[account],
        shaped=np.full(len(account), shaped, dtype=np.bool_),
    )


def _usage_weights(rng: np.random.Generator, con: Contacts) -> F64:
    """Practitioners do most of the clicking, executives hardly any; individuals vary."""
    return USER_ROLE_WEIGHT[con.role] * rng.lognormal(0.0, 0.8, con.n)


def _events_table(
    rng: np.random.Generator,
    acc: Accounts,
    con: Contacts,
    alias_of: I64,
    alias_ids: pa.Array,
    account: I64,
    name: I64,
    ts: I64,
    user: I64,
    feature: I64,
    n_unknown: int,
    t_end: int,
) -> pa.Table:
    """Add alias/unknown account ids, sort by time and build the Arrow table.

    Account and user ids are gathered from small dictionaries (real ids, aliases, unknown
    ids) by index, which is far cheaper than formatting millions of strings.
    """
    acc_width, con_width = max(6, len(str(acc.n))), max(7, len(str(con.n)))
    n_alias = len(alias_ids)
    # Ids one digit longer than any real id can never collide with one.
    n_ghosts = max(1, min(50, n_unknown // 20))
    ghost_acc = 10 ** (acc_width + 1) - 1 - np.arange(n_ghosts, dtype=np.int64)
    ghost_con = 10 ** (con_width + 1) - 1 - np.arange(n_ghosts, dtype=np.int64)
    acc_dict = pa.concat_arrays(
        [acc.ids, alias_ids, numbered("A", ghost_acc, acc_width + 1)]
    ).cast(pa.string())
    con_dict = pa.concat_arrays([con.ids, numbered("C", ghost_con, con_width + 1)]).cast(
        pa.string()
    )

    # ~5 % of an aliased account's events still arrive under its legacy CRM id.
    acc_idx = account.copy()
    aliased = (alias_of[account] >= 0) & (rng.random(len(account)) < ALIAS_EVENT_SHARE)
    acc_idx[aliased] = acc.n + alias_of[account[aliased]]

    # A trickle of events from accounts nobody knows (test tenants, deleted data...).
    ghost = rng.integers(n_ghosts, size=n_unknown)
    unknown_name = np.where(rng.random(n_unknown) < 0.6, LOGIN, FEATURE_USED)
    unknown_feature = np.where(
        unknown_name == FEATURE_USED, rng.integers(len(FEATURES), size=n_unknown), -1
    )
    unknown_ts = t_end - rng.integers(HISTORY_DAYS * DAY, size=n_unknown)
    # Narrow dtypes first: the time-sort permutation below is memory-bound.
    acc_codes = np.concatenate([acc_idx, acc.n + n_alias + ghost], dtype=np.int32)
    user_codes = np.concatenate([user, con.n + ghost], dtype=np.int32)
    name_codes = np.concatenate([name, unknown_name], dtype=np.int8)
    feature_codes = np.concatenate([feature, unknown_feature], dtype=np.int8)
    ts = np.concatenate([ts, unknown_ts])

    # Quicksort is deterministic for identical input and twice as fast as a stable sort.
    order = np.argsort(ts)
    ts = ts[order]
    feature_codes = feature_codes[order]
    return pa.table(
        {
            "event_id": pa.array(np.arange(1, len(ts) + 1, dtype=np.int64)),
            "account_id": acc_dict.take(pa.array(acc_codes[order])),
            "user_id": con_dict.take(pa.array(user_codes[order])),
            "ts": timestamps(ts),
            "name": labels(EVENT_NAMES, name_codes[order]),
            "feature": labels(FEATURES, feature_codes, null=feature_codes < 0),
        }
    )
