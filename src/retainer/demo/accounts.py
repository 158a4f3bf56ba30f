"""Accounts: customer companies with their tier, industry, home country, seats and owner.

Besides what the accounts table shows, each account carries its latent health ``z`` and
its planned cancellation; every other table derives its signals from these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import pyarrow as pa

from retainer.demo.arrays import (
    DAY,
    F64,
    HOUR,
    I64,
    NEVER,
    Bool,
    Str,
    calibrated_intercept,
    labels,
    numbered,
    sigmoid,
    timestamps,
    uniform_between,
    weighted_choice,
)

HISTORY_DAYS: Final = 730
NEW_ACCOUNT_DAYS: Final = 30

TIERS: Final = ("smb", "mid_market", "enterprise")
TIER_P: Final = (0.65, 0.27, 0.08)
TIER_HEALTH: Final = np.array([-0.1, 0.1, 0.45])  # enterprise customers are better served
TIER_CHURN: Final = np.array([0.35, -0.1, -0.6])  # ...and locked in by contracts
SEAT_MEDIAN: Final = np.array([7.0, 45.0, 320.0])
SEAT_SIGMA: Final = np.array([0.55, 0.5, 0.7])
SEAT_MIN: Final = np.array([3, 20, 100])
SEAT_MAX: Final = np.array([25, 150, 2000])
INDUSTRIES: Final = (
    "software", "retail", "healthcare", "finance", "manufacturing", "education", "media",
)
INDUSTRY_P: Final = (0.26, 0.14, 0.13, 0.15, 0.12, 0.08, 0.12)
INDUSTRY_WORDS: Final = (
    ("Labs", "Software", "Systems", "Technologies", "Cloud"),
    ("Retail", "Goods", "Outfitters", "Market", "Stores"),
    ("Health", "Care", "Medical", "Clinics", "Bio"),
    ("Capital", "Finance", "Pay", "Insurance", "Partners"),
    ("Industries", "Works", "Robotics", "Materials", "Manufacturing"),
    ("Learning", "Academy", "Education", "Schools", "Tutors"),
    ("Media", "Studios", "Publishing", "Network", "Broadcasting"),
)
SYL_HEAD: Final = (
    "Nor", "Vel", "Tri", "Quan", "Zen", "Ari", "Cor", "Lum", "Ver", "Sol", "Hex", "Nim", "Oro",
    "Pax", "Kin", "Tal", "Mer", "Syn", "Fal", "Bri", "Cal", "Dex", "Eon", "Fen", "Gal", "Hal",
    "Ion", "Jun", "Kor", "Lyn", "Mav", "Nex", "Oak", "Pol", "Quil", "Rho", "Sil", "Tor", "Ul",
    "Vox", "Wyn", "Xen", "Yar", "Zor",
)
SYL_MID: Final = ("", "", "", "", "", "a", "o", "i", "e", "ra", "li", "no", "ta", "ve", "si")
SYL_TAIL: Final = (
    "vex", "ora", "io", "ant", "ix", "ly", "wave", "path", "stack", "forge", "loop", "mint",
    "grid", "leaf", "bit", "wise", "nest", "ium", "era", "ara", "on", "is", "ence", "ity",
    "ova", "ar", "ent", "ia", "us", "ex",
)

# Countries: index 0-4 are the EU countries, 5 is the US.
COUNTRIES: Final = ("DE", "FR", "NL", "ES", "IE", "US")
EU_P: Final = (0.34, 0.22, 0.16, 0.15, 0.13)
US_INDEX: Final = 5
LEGAL_FORMS: Final = ("GmbH", "SAS", "B.V.", "S.L.", "Ltd", "Inc.")
US_STATES: Final = (
    "CA", "NY", "TX", "WA", "MA", "IL", "FL", "CO", "GA", "NC", "VA", "OR", "UT", "NJ", "PA", "MN",
)
US_STATE_W: Final = (18, 12, 11, 8, 7, 6, 6, 5, 5, 4, 4, 3, 3, 3, 3, 2)

CSM_EU: Final = (
    "lena.schmidt", "pierre.martin", "sofia.garcia", "niamh.byrne", "jan.devries", "marco.rossi",
)
CSM_US: Final = (
    "maria.lopez", "james.carter", "emily.chen", "david.kim", "sarah.johnson",
    "michael.brown", "ashley.nguyen", "robert.davis",
)
CSM_DOMAIN: Final = "@retainer-demo.io"


@dataclass(frozen=True)
class Accounts:
    """Account attributes, observable and latent, one array element per account."""

    ids: pa.Array
    names: pa.Array
    domains: Str
    tier: I64
    industry: I64
    is_us: Bool
    hq_country: I64  # index into COUNTRIES
    hq_state: I64  # index into US_STATES, -1 for EU accounts
    seats: I64
    health: F64  # latent z
    inactive: Bool  # never really activates
    created: I64  # epoch seconds
    risk_at: I64  # planned cancellation (may lie after end), NEVER if none planned
    decay_start: I64  # usage starts to decay here (risk_at - 30..90 days)
    churned: Bool  # risk_at <= end
    stop: I64  # min(risk_at, end): nothing of the account is dated later

    @property
    def n(self) -> int:
        return len(self.tier)


def _company_names(
    rng: np.random.Generator, industry: I64, country: I64
) -> tuple[pa.Array, Str]:
    """Syllable-built names like "Norvex Labs GmbH", unique by (stem, word), plus domains."""
    n = len(industry)
    heads, mids, tails = np.array(SYL_HEAD), np.array(SYL_MID), np.array(SYL_TAIL)
    words = np.array([w for ws in INDUSTRY_WORDS for w in ws])
    word_base = industry * len(INDUSTRY_WORDS[0])

    def draw(size: int, base: I64) -> tuple[Str, Str]:
        stem = np.strings.add(
            np.strings.add(heads[rng.integers(len(heads), size=size)],
                           mids[rng.integers(len(mids), size=size)]),
            tails[rng.integers(len(tails), size=size)],
        )
        return stem, words[base + rng.integers(len(INDUSTRY_WORDS[0]), size=size)]

    stem, word = draw(n, word_base)
    stem = stem.astype("<U24")
    word = word.astype("<U16")
    # Re-draw duplicates a few times; a numeric suffix settles whatever still collides.
    for attempt in range(25):
        key = np.strings.add(np.strings.add(stem, " "), word)
        _, first = np.unique(key, return_index=True)
        dup = np.ones(n, dtype=np.bool_)
        dup[first] = False
        if not dup.any():
            break
        idx = np.flatnonzero(dup)
        if attempt == 24:
            stem[idx] = np.strings.add(stem[idx], (np.arange(len(idx)) + 2).astype(np.str_))
            break
        stem[idx], word[idx] = draw(len(idx), word_base[idx])
    legal = np.array(LEGAL_FORMS, dtype="<U8")[country]
    us = country == US_INDEX
    legal[us] = np.array(["Inc.", "LLC", "Corp."])[rng.integers(3, size=int(us.sum()))]
    label = np.strings.add(np.strings.add(stem, " "), word)
    names = pa.array(np.strings.add(np.strings.add(label, " "), legal))
    domains = np.strings.add(np.strings.lower(np.strings.add(stem, word)), ".example")
    return names, domains


def make_accounts(rng: np.random.Generator, n: int, t_end: int) -> Accounts:
    t_start = t_end - HISTORY_DAYS * DAY
    tier = weighted_choice(rng, 3, n, TIER_P)
    industry = weighted_choice(rng, len(INDUSTRIES), n, INDUSTRY_P)
    is_us = rng.random(n) < 0.6
    hq_country = np.where(is_us, US_INDEX, weighted_choice(rng, 5, n, EU_P))
    hq_state = np.where(is_us, weighted_choice(rng, len(US_STATES), n, US_STATE_W), -1)
    health = rng.standard_normal(n) + TIER_HEALTH[tier]

    # Signups: steady growth (more recent signups) plus a fresh cohort in the last 30 days.
    new_window = NEW_ACCOUNT_DAYS * DAY
    older = t_start + (rng.random(n) ** 0.85 * (HISTORY_DAYS * DAY - new_window - DAY))
    newer = t_end - HOUR - rng.random(n) * (new_window - HOUR)
    created = np.where(rng.random(n) < 0.08, newer, older).astype(np.int64)

    seats_raw = SEAT_MEDIAN[tier] * rng.lognormal(0.0, 1.0, n) ** SEAT_SIGMA[tier]
    seats = np.clip(np.round(seats_raw), SEAT_MIN[tier], SEAT_MAX[tier]).astype(np.int64)

    # ~15 % never activate; unhealthy accounts are far more likely to stall.
    stall_logit = -1.1 * health
    stall_a = calibrated_intercept(stall_logit, np.ones(n), 0.15)
    inactive = rng.random(n) < sigmoid(stall_a + stall_logit)
    inactive[int(np.argmax(health))] = False  # at least one account produces usage

    risk_at, decay_start = _plan_churn(rng, tier, health, inactive, created, t_end)
    churned = risk_at <= t_end
    names, domains = _company_names(rng, industry, hq_country)
    ids = numbered("A", np.arange(1, n + 1, dtype=np.int64), max(6, len(str(n))))
    return Accounts(
        ids=ids, names=names, domains=domains, tier=tier, industry=industry, is_us=is_us,
        hq_country=hq_country, hq_state=hq_state, seats=seats, health=health,
        inactive=inactive, created=created, risk_at=risk_at, decay_start=decay_start,
        churned=churned, stop=np.minimum(risk_at, t_end),
    )


def _plan_churn(
    rng: np.random.Generator, tier: I64, health: F64, inactive: Bool, created: I64, t_end: int
) -> tuple[I64, I64]:
    """Planned cancellation times (NEVER if none) and when usage starts decaying.

    A planned cancellation is uniform in [created + 30 d, end + 90 d]; only those before
    ``end`` are real cancellations, the rest are accounts visibly at risk today.
    """
    n = len(tier)
    earliest = created + NEW_ACCOUNT_DAYS * DAY
    horizon = t_end + 90 * DAY
    observed_share = np.clip((t_end - earliest) / (horizon - earliest), 0.0, 1.0)
    logit = TIER_CHURN[tier] + 0.8 * inactive - 1.4 * health
    a = calibrated_intercept(logit, observed_share, 0.16)
    planned = rng.random(n) < sigmoid(a + logit)
    when = uniform_between(rng, earliest, np.full(n, horizon, dtype=np.int64))
    risk_at = np.where(planned, when, NEVER).astype(np.int64)
    decay_len = (rng.uniform(30.0, 90.0, n) * DAY).astype(np.int64)
    return risk_at, risk_at - decay_len


def _owners(rng: np.random.Generator, acc: Accounts) -> pa.Array:
    """CSM per account from the region's team; ~30 % of SMB accounts are tech-touch (none)."""
    eu, us = np.array(CSM_EU), np.array(CSM_US)
    owner = np.where(
        acc.is_us, us[rng.integers(len(us), size=acc.n)], eu[rng.integers(len(eu), size=acc.n)]
    )
    unowned = (acc.tier == 0) & (rng.random(acc.n) < 0.30)
    return pa.array(np.strings.add(owner, CSM_DOMAIN), mask=unowned)


def accounts_table(rng: np.random.Generator, acc: Accounts) -> pa.Table:
    return pa.table(
        {
            "account_id": acc.ids,
            "name": acc.names,
            "tier": labels(TIERS, acc.tier),
            "industry": labels(INDUSTRIES, acc.industry),
            "region": labels(("eu", "us"), acc.is_us.astype(np.int64)),
            "owner": _owners(rng, acc),
            "seats_purchased": pa.array(acc.seats),
            "created_at": timestamps(acc.created),
        }
    )
