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
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

__all__ = ["DemoSummary", "generate"]

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Bool = npt.NDArray[np.bool_]
Str = npt.NDArray[np.str_]
Codes = npt.NDArray[np.integer[Any]]  # category codes of any integer width

DAY: Final = 86_400
HOUR: Final = 3_600
HISTORY_DAYS: Final = 730
NEW_ACCOUNT_DAYS: Final = 30
EVENTS_PER_ACCOUNT: Final = 250
EPOCH: Final = datetime(1970, 1, 1)
# Sentinel "never" far beyond any end date; keeps arithmetic branch-free.
NEVER: Final = 2**52
CHUNK: Final = 1 << 18  # rows per block in the hot loops (see _sample_times)

# --- accounts ---------------------------------------------------------------------------
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
# Rough offset of local business hours to UTC, in hours (EU ~ CET, US ~ central time).
REGION_UTC_OFFSET: Final = np.array([1.0, -6.0])

CSM_EU: Final = (
    "lena.schmidt", "pierre.martin", "sofia.garcia", "niamh.byrne", "jan.devries", "marco.rossi",
)
CSM_US: Final = (
    "maria.lopez", "james.carter", "emily.chen", "david.kim", "sarah.johnson",
    "michael.brown", "ashley.nguyen", "robert.davis",
)
CSM_DOMAIN: Final = "@retainer-demo.io"

# --- contacts ---------------------------------------------------------------------------
ROLES: Final = ("practitioner", "manager", "executive")
PRACTITIONER, MANAGER, EXECUTIVE = 0, 1, 2
CONTACT_MIN: Final = np.array([2, 5, 15])
CONTACT_MAX: Final = np.array([6, 20, 60])
CONTACT_SEATS_PER: Final = np.array([12.0, 12.0, 40.0])  # one extra contact per N seats
EXEC_P: Final = np.array([0.10, 0.10, 0.12])
MANAGER_P: Final = np.array([0.20, 0.20, 0.18])
FIRST_NAMES: Final = (
    ("Lukas", "Anna", "Jonas", "Lena", "Felix", "Laura", "Maximilian", "Julia", "Paul",
     "Sophie", "Tobias", "Katharina"),
    ("Louis", "Camille", "Hugo", "Chloe", "Lucas", "Manon", "Theo", "Lea", "Antoine", "Julie",
     "Nicolas", "Claire"),
    ("Daan", "Emma", "Sem", "Julia", "Lucas", "Sophie", "Milan", "Tess", "Bram", "Fleur",
     "Ruben", "Sanne"),
    ("Hugo", "Lucia", "Martin", "Maria", "Pablo", "Paula", "Alejandro", "Sofia", "Daniel",
     "Carmen", "Javier", "Elena"),
    ("Jack", "Aoife", "Sean", "Ciara", "Conor", "Niamh", "Darragh", "Saoirse", "Cian", "Roisin",
     "Liam", "Orla"),
    ("James", "Mary", "Michael", "Jennifer", "David", "Jessica", "Chris", "Ashley", "Daniel",
     "Emily", "Kevin", "Sarah", "Brian", "Megan", "Jason", "Rachel", "Tyler", "Lauren"),
)
LAST_NAMES: Final = (
    ("Mueller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
     "Hoffmann", "Koch", "Richter", "Wolf"),
    ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy",
     "Moreau", "Simon", "Laurent"),
    ("Jansen", "Visser", "Bakker", "Smit", "Meijer", "Mulder", "Bos", "Vos", "Peters",
     "Hendriks", "Dekker", "Brouwer"),
    ("Garcia", "Fernandez", "Gonzalez", "Rodriguez", "Lopez", "Martinez", "Sanchez", "Perez",
     "Gomez", "Ruiz", "Diaz", "Moreno"),
    ("Murphy", "Kelly", "Byrne", "Ryan", "Walsh", "Doyle", "McCarthy", "Gallagher", "Doherty",
     "Kennedy", "Lynch", "Quinn"),
    ("Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Anderson",
     "Taylor", "Thomas", "Moore", "Jackson", "Martin", "Lee", "Nguyen", "Patel", "Kim"),
)

# --- events -----------------------------------------------------------------------------
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
RAMP_DAYS: Final = 21.0
RAMP_FLOOR: Final = 0.1
DECAY_FLOOR: Final = 0.05
WEEKEND_WEIGHT: Final = 0.3
ALIAS_ACCOUNT_SHARE: Final = 0.20
ALIAS_EVENT_SHARE: Final = 0.05  # of an aliased account's events -> ~1 % of all events
UNKNOWN_EVENT_SHARE: Final = 0.0005
FIXED_EVENT_CAP: Final = 0.25  # milestones may use at most this share of the event budget
USER_ROLE_WEIGHT: Final = np.array([1.0, 0.25, 0.03])

# --- tickets & surveys ------------------------------------------------------------------
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

# --- billing & consent ------------------------------------------------------------------
PLANS: Final = ("starter", "growth", "enterprise")
PRICE_PER_SEAT: Final = np.array([29.0, 42.0, 55.0])
PURPOSES: Final = ("marketing", "product_updates", "success_outreach")
CHANNELS: Final = ("email", "phone", "in_app")
CONSENT_STATUS: Final = ("granted", "withdrawn", "denied")
LEGAL_BASES: Final = ("consent", "legitimate_interest", "contract")
CONSENT_SOURCES: Final = ("signup_form", "preference_center", "import", "support_call")

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


@dataclass(frozen=True)
class _Accounts:
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


@dataclass(frozen=True)
class _Contacts:
    """Contact attributes; ``block_*`` locate each account's contiguous run of contacts."""

    ids: pa.Array
    account: I64  # index into accounts; contacts of one account are contiguous
    role: I64
    country: I64
    state: I64  # index into US_STATES, -1 in the EU
    created: I64
    block_start: I64  # per account: index of its first contact (the signup practitioner)
    block_len: I64  # per account: number of contacts

    @property
    def n(self) -> int:
        return len(self.account)


@dataclass(frozen=True)
class _Tickets:
    """The tickets table plus the raw columns CSAT answers are derived from."""

    table: pa.Table
    account: I64
    contact: I64
    opened: I64
    resolved: I64
    priority: I64
    surge: Bool


# ---------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------


def _sigmoid(x: F64) -> F64:
    return 1.0 / (1.0 + np.exp(-x))


def _calibrated_intercept(logit: F64, weight: F64, target: float) -> float:
    """Intercept ``a`` with ``mean(weight * sigmoid(a + logit)) == target`` (bisection).

    Solving instead of hard-coding keeps the churn rate on target for any size or seed.
    """
    lo, hi = -30.0, 30.0
    for _ in range(80):
        mid = (lo + hi) / 2
        if float(np.mean(weight * _sigmoid(mid + logit))) < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _pick(rng: np.random.Generator, options: int, size: int, p: tuple[float, ...]) -> I64:
    weights = np.asarray(p, dtype=np.float64)
    return rng.choice(options, size=size, p=weights / weights.sum())


def _categorical(rng: np.random.Generator, probs: F64) -> I64:
    """One draw per row of a (rows x categories) probability matrix."""
    cum = np.cumsum(probs, axis=1)
    u = rng.random(len(probs)) * cum[:, -1]
    drawn: I64 = (u[:, None] >= cum[:, :-1]).sum(axis=1).astype(np.int64)
    return drawn


def _numbered(prefix: str, numbers: I64, width: int) -> pa.Array:
    """``prefix`` + zero-padded number, e.g. ``A000042``."""
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers, pa.int64()), pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, digits, "")


def _labels(values: tuple[str, ...], codes: Codes, null: Bool | None = None) -> pa.Array:
    """Turn category codes into a plain string column (``null`` marks missing values)."""
    codes = np.where(codes < 0, 0, codes) if null is not None else codes
    idx = pa.array(codes.astype(np.int32), mask=null)
    return pa.array(values, pa.string()).take(idx)


def _ts(seconds: I64, null: Bool | None = None) -> pa.Array:
    return pa.array(seconds.astype(np.int64), pa.timestamp("s"), mask=null)


def _uniform_between(rng: np.random.Generator, lo: I64, hi: I64) -> I64:
    return lo + np.floor(rng.random(len(lo)) * (hi - lo)).astype(np.int64)


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


# ---------------------------------------------------------------------------------------
# accounts
# ---------------------------------------------------------------------------------------


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


def _make_accounts(rng: np.random.Generator, n: int, t_end: int) -> _Accounts:
    t_start = t_end - HISTORY_DAYS * DAY
    tier = _pick(rng, 3, n, TIER_P)
    industry = _pick(rng, len(INDUSTRIES), n, INDUSTRY_P)
    is_us = rng.random(n) < 0.6
    hq_country = np.where(is_us, US_INDEX, _pick(rng, 5, n, EU_P))
    hq_state = np.where(is_us, _pick(rng, len(US_STATES), n, US_STATE_W), -1)
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
    stall_a = _calibrated_intercept(stall_logit, np.ones(n), 0.15)
    inactive = rng.random(n) < _sigmoid(stall_a + stall_logit)
    inactive[int(np.argmax(health))] = False  # at least one account produces usage

    risk_at, decay_start = _plan_churn(rng, tier, health, inactive, created, t_end)
    churned = risk_at <= t_end
    names, domains = _company_names(rng, industry, hq_country)
    ids = _numbered("A", np.arange(1, n + 1, dtype=np.int64), max(6, len(str(n))))
    return _Accounts(
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
    a = _calibrated_intercept(logit, observed_share, 0.16)
    planned = rng.random(n) < _sigmoid(a + logit)
    when = _uniform_between(rng, earliest, np.full(n, horizon, dtype=np.int64))
    risk_at = np.where(planned, when, NEVER).astype(np.int64)
    decay_len = (rng.uniform(30.0, 90.0, n) * DAY).astype(np.int64)
    return risk_at, risk_at - decay_len


def _owners(rng: np.random.Generator, acc: _Accounts) -> pa.Array:
    """CSM per account from the region's team; ~30 % of SMB accounts are tech-touch (none)."""
    eu, us = np.array(CSM_EU), np.array(CSM_US)
    owner = np.where(
        acc.is_us, us[rng.integers(len(us), size=acc.n)], eu[rng.integers(len(eu), size=acc.n)]
    )
    unowned = (acc.tier == 0) & (rng.random(acc.n) < 0.30)
    return pa.array(np.strings.add(owner, CSM_DOMAIN), mask=unowned)


def _accounts_table(rng: np.random.Generator, acc: _Accounts) -> pa.Table:
    return pa.table(
        {
            "account_id": acc.ids,
            "name": acc.names,
            "tier": _labels(TIERS, acc.tier),
            "industry": _labels(INDUSTRIES, acc.industry),
            "region": _labels(("eu", "us"), acc.is_us.astype(np.int64)),
            "owner": _owners(rng, acc),
            "seats_purchased": pa.array(acc.seats),
            "created_at": _ts(acc.created),
        }
    )


# ---------------------------------------------------------------------------------------
# contacts
# ---------------------------------------------------------------------------------------


def _make_contacts(rng: np.random.Generator, acc: _Accounts) -> tuple[_Contacts, pa.Table]:
    """People per account, contiguous by account; headcount grows with seats, capped by tier."""
    extra = rng.poisson(1.0 + acc.seats / CONTACT_SEATS_PER[acc.tier])
    count = np.minimum(CONTACT_MIN[acc.tier] + extra, CONTACT_MAX[acc.tier]).astype(np.int64)
    block_start = np.concatenate(([0], np.cumsum(count)[:-1])).astype(np.int64)
    account = np.repeat(np.arange(acc.n, dtype=np.int64), count)
    m = len(account)
    pos = np.arange(m, dtype=np.int64) - block_start[account]
    tier = acc.tier[account]

    # The signup contact is a practitioner; the second is usually their manager.
    u = rng.random(m)
    later_role = np.where(
        u < EXEC_P[tier], EXECUTIVE, np.where(u < EXEC_P[tier] + MANAGER_P[tier], MANAGER, 0)
    )
    role = np.where(pos == 0, PRACTITIONER, np.where(pos == 1, (u < 0.85) * MANAGER, later_role))

    # Colleagues join over the account's life, most of them early.
    acc_created, acc_stop = acc.created[account], acc.stop[account]
    join = rng.beta(0.7, 3.0, m) * (acc_stop - acc_created)
    created = np.where(pos == 0, acc_created, acc_created + join.astype(np.int64))

    abroad = (~acc.is_us[account]) & (rng.random(m) < 0.2)
    country = np.where(abroad, _pick(rng, 5, m, EU_P), acc.hq_country[account])
    moved = rng.random(m) < 0.25
    other_state = _pick(rng, len(US_STATES), m, US_STATE_W)
    state = np.where(country == US_INDEX, np.where(moved, other_state, acc.hq_state[account]), -1)

    first, last = _person_names(rng, country)
    numbers = np.arange(1, m + 1, dtype=np.int64)
    ids = _numbered("C", numbers, max(7, len(str(m))))
    email = pc.binary_join_element_wise(
        pa.array(np.strings.lower(first)), ".", pa.array(np.strings.lower(last)), ".",
        pc.cast(pa.array(numbers), pa.string()), "@", pa.array(acc.domains[account]), "",
    )
    con = _Contacts(
        ids=ids, account=account, role=role.astype(np.int64), country=country, state=state,
        created=created, block_start=block_start, block_len=count,
    )
    table = pa.table(
        {
            "contact_id": ids,
            "account_id": acc.ids.take(pa.array(account)),
            "email": email,
            "name": pa.array(np.strings.add(np.strings.add(first, " "), last)),
            "role": _labels(ROLES, con.role),
            "country": _labels(COUNTRIES, country),
            "state": _labels(US_STATES, state, null=state < 0),
            "created_at": _ts(created),
        }
    )
    return con, table


def _person_names(rng: np.random.Generator, country: I64) -> tuple[Str, Str]:
    """ASCII first/last names typical of each contact's country (emails stay plain)."""
    m = len(country)
    first = np.empty(m, dtype="<U12")
    last = np.empty(m, dtype="<U12")
    for c in range(len(COUNTRIES)):  # one vectorised draw per country's name list
        idx = np.flatnonzero(country == c)
        firsts, lasts = np.array(FIRST_NAMES[c]), np.array(LAST_NAMES[c])
        first[idx] = firsts[rng.integers(len(firsts), size=len(idx))]
        last[idx] = lasts[rng.integers(len(lasts), size=len(idx))]
    return first, last


def _pick_contacts(
    rng: np.random.Generator,
    con: _Contacts,
    account: I64,
    ts: I64,
    weight: F64,
) -> I64:
    """A contact of each row's account, drawn ∝ ``weight``, who already existed at ``ts``.

    Inverse-CDF sampling on one global cumulative sum (contacts of an account are
    contiguous) turns this into a searchsorted, done chunk by chunk like _sample_times.
    """
    cum = np.cumsum(weight)
    before = np.concatenate(([0.0], cum))[con.block_start]
    total = cum[con.block_start + con.block_len - 1] - before
    out = np.empty(len(account), dtype=np.int64)
    for i in range(0, len(account), CHUNK):
        acct, when = account[i : i + CHUNK], ts[i : i + CHUNK]
        first = con.block_start[acct]
        last = first + con.block_len[acct] - 1
        # Anyone not placed below falls back to the signup practitioner (there from day one).
        pick = first.copy()
        todo = np.arange(len(acct))
        for _ in range(6):  # a few redraws for rows that picked a not-yet-joined colleague
            if not len(todo):
                break
            a = acct[todo]
            target = before[a] + rng.random(len(todo)) * total[a]
            drawn = np.clip(np.searchsorted(cum, target, side="right"), first[todo], last[todo])
            ok = con.created[drawn] <= when[todo]
            pick[todo[ok]] = drawn[ok]
            todo = todo[~ok]
        out[i : i + CHUNK] = pick
    return out


# ---------------------------------------------------------------------------------------
# time sampling
# ---------------------------------------------------------------------------------------


def _profile(t: F64 | I64, account: npt.NDArray[np.intp] | I64, acc: _Accounts) -> F64:
    """Relative usage intensity at time ``t``: onboarding ramp x pre-cancellation decay."""
    ramp = np.clip(
        RAMP_FLOOR + (1 - RAMP_FLOOR) * (t - acc.created[account]) / (RAMP_DAYS * DAY),
        RAMP_FLOOR, 1.0,
    )
    risk = acc.risk_at[account]
    left = np.clip((risk - t) / (risk - acc.decay_start[account]), 0.0, 1.0)
    return ramp * (DECAY_FLOOR + (1 - DECAY_FLOOR) * left)


def _exposure_days(acc: _Accounts) -> F64:
    """Integral of the usage profile over each account's life, in days (midpoint rule)."""
    steps = 48
    frac = (np.arange(steps) + 0.5) / steps
    span = (acc.stop - acc.created).astype(np.float64)
    t = acc.created[:, None] + frac[None, :] * span[:, None]
    rows = np.arange(acc.n)[:, None]
    mean_profile: F64 = _profile(t, rows, acc).mean(axis=1)
    return mean_profile * span / DAY


def _sample_times(
    rng: np.random.Generator,
    acc: _Accounts,
    account: I64,
    lo: I64,
    hi: I64,
    shaped: Bool,
) -> I64:
    """Event times in [lo, hi] following business hours, weekdays and (if shaped) the profile.

    Works through fixed-size chunks: temporaries of a few MB are recycled by the allocator,
    while 80 MB ones are fresh mmaps whose page faults made this three times slower.
    """
    to_utc = (-REGION_UTC_OFFSET * HOUR).astype(np.int64)[acc.is_us.astype(np.intp)]
    out = np.empty(len(account), dtype=np.int64)
    for i in range(0, len(account), CHUNK):
        part = slice(i, i + CHUNK)
        out[part] = _sample_chunk(rng, acc, to_utc, account[part], lo[part], hi[part], shaped[part])
    return out


def _sample_chunk(
    rng: np.random.Generator,
    acc: _Accounts,
    to_utc: I64,
    account: I64,
    lo: I64,
    hi: I64,
    shaped: Bool,
) -> I64:
    """Rejection sampling for one chunk of :func:`_sample_times`.

    Draw a day uniformly, a local time of day from a business-hours mixture, and accept with
    probability weekday weight x profile.  Rows that keep missing (tiny windows) fall back to
    a plain uniform draw after a bounded number of rounds.  Times of day and acceptance draws
    are float32: whole seconds within a day is all the precision we need.
    """
    out = np.empty(len(account), dtype=np.int64)
    todo = np.arange(len(account))
    for _ in range(60):
        if not len(todo):
            break
        k = len(todo)
        a, lo_k, hi_k = account[todo], lo[todo], hi[todo]
        day = lo_k + (rng.random(k) * (hi_k - lo_k)).astype(np.int64)
        day -= day % DAY
        local = rng.standard_normal(k, dtype=np.float32) * np.float32(2.5 * HOUR)
        local += np.float32(13.5 * HOUR)
        off_hours = np.flatnonzero(rng.random(k, dtype=np.float32) < 0.2)
        local[off_hours] = rng.random(len(off_hours), dtype=np.float32) * np.float32(DAY)
        cand = day + (local.astype(np.int64) + to_utc[a]) % DAY
        weekend = (cand // DAY + 3) % 7 >= 5  # 1970-01-01 was a Thursday
        p = np.where(weekend, np.float32(WEEKEND_WEIGHT), np.float32(1.0))
        rows = np.flatnonzero(shaped[todo])
        p[rows] *= _profile(cand[rows], a[rows], acc).astype(np.float32)
        ok = (cand >= lo_k) & (cand <= hi_k) & (rng.random(k, dtype=np.float32) < p)
        out[todo[ok]] = cand[ok]
        todo = todo[~ok]
    if len(todo):
        out[todo] = _uniform_between(rng, lo[todo], hi[todo])
    return out


# ---------------------------------------------------------------------------------------
# events
# ---------------------------------------------------------------------------------------


@dataclass
class _EventParts:
    """Rows of one kind of event before times are drawn."""

    account: I64
    name: I64
    lo: I64
    hi: I64
    shaped: Bool


def _fixed_event_counts(
    rng: np.random.Generator, acc: _Accounts, con: _Contacts, budget: int
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


def _activity_counts(rng: np.random.Generator, acc: _Accounts, budget: int) -> I64:
    """Split the remaining budget over active accounts ∝ intensity x exposure (multinomial)."""
    intensity = (
        TIER_EVENTS_PER_DAY[acc.tier]
        * np.sqrt(acc.seats / SEAT_MEDIAN[acc.tier])
        * np.exp(0.7 * acc.health)
        * rng.lognormal(0.0, 0.8, acc.n)
    )
    weight = np.where(acc.inactive, 0.0, intensity * _exposure_days(acc))
    if budget <= 0 or weight.sum() <= 0:
        return np.zeros(acc.n, dtype=np.int64)
    return rng.multinomial(budget, weight / weight.sum()).astype(np.int64)


def _activity_names(rng: np.random.Generator, acc: _Accounts, account: I64) -> I64:
    """login / report_exported / feature_used; healthy accounts click deeper per login."""
    z = acc.health
    p_login = np.clip(0.42 - 0.06 * z, 0.25, 0.6)[account]
    p_report = np.clip(0.05 + 0.02 * z, 0.01, 0.1)[account]
    u = rng.random(len(account))
    return np.where(u < p_login, LOGIN, np.where(u < p_login + p_report, REPORT, FEATURE_USED))


def _feature_choice(rng: np.random.Generator, acc: _Accounts, account: I64) -> I64:
    """Each account adopts its own ordered set of features; depth grows with health."""
    n = acc.n
    keys = (
        np.log(FEATURE_POP)[None, :]
        + FEATURE_TIER_BOOST[acc.tier]
        + rng.gumbel(size=(n, len(FEATURES)))
    )
    order = np.argsort(-keys, axis=1).astype(np.int8)  # Gumbel top-k = weighted shuffle
    share = _sigmoid(0.3 + 1.1 * acc.health + 0.5 * rng.standard_normal(n))
    depth = np.where(acc.inactive, 1, 2 + rng.binomial(len(FEATURES) - 2, share))
    # Top-ranked features get most of the clicks.
    rank = np.floor(depth[account] * rng.random(len(account)) ** 1.6).astype(np.int64)
    return order[account, rank].astype(np.int64)


def _make_events(
    rng: np.random.Generator,
    acc: _Accounts,
    con: _Contacts,
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
    ts = _sample_times(
        rng, acc, account,
        np.concatenate([p.lo for p in parts]),
        np.concatenate([p.hi for p in parts]),
        np.concatenate([p.shaped for p in parts]),
    )
    user = _pick_contacts(rng, con, account, ts, _usage_weights(rng, con))

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


def _window_part(acc: _Accounts, account: I64, name: I64, shaped: bool) -> _EventParts:
    return _EventParts(
        account=account,
        name=name,
        lo=acc.created[account],
        hi=acc.stop[account],
        shaped=np.full(len(account), shaped, dtype=np.bool_),
    )


def _usage_weights(rng: np.random.Generator, con: _Contacts) -> F64:
    """Practitioners do most of the clicking, executives hardly any; individuals vary."""
    return USER_ROLE_WEIGHT[con.role] * rng.lognormal(0.0, 0.8, con.n)


def _events_table(
    rng: np.random.Generator,
    acc: _Accounts,
    con: _Contacts,
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
        [acc.ids, alias_ids, _numbered("A", ghost_acc, acc_width + 1)]
    ).cast(pa.string())
    con_dict = pa.concat_arrays([con.ids, _numbered("C", ghost_con, con_width + 1)]).cast(
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
            "ts": _ts(ts),
            "name": _labels(EVENT_NAMES, name_codes[order]),
            "feature": _labels(FEATURES, feature_codes, null=feature_codes < 0),
        }
    )


# ---------------------------------------------------------------------------------------
# tickets & surveys
# ---------------------------------------------------------------------------------------


def _make_tickets(
    rng: np.random.Generator, acc: _Accounts, con: _Contacts, t_end: int
) -> _Tickets:
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
    opened = _sample_times(rng, acc, account, lo, hi, np.zeros(len(account), dtype=np.bool_))

    severity = rng.logistic(size=len(account)) - 0.5 * z[account] + 1.3 * surge
    priority = np.searchsorted(PRIORITY_CUTS, severity).astype(np.int64)
    onboarding = opened - acc.created[account] < 30 * DAY
    kind = np.where(surge, 2, np.where(onboarding, 0, 1))
    category = _categorical(rng, CATEGORY_P[kind])
    resolution = rng.exponential(RESOLUTION_DAYS[priority]) * DAY
    resolved = opened + resolution.astype(np.int64)
    contact = _pick_contacts(rng, con, account, opened, TICKET_ROLE_WEIGHT[con.role])

    order = np.argsort(opened, kind="stable")
    account, contact, opened = account[order], contact[order], opened[order]
    resolved, priority, surge = resolved[order], priority[order], surge[order]
    category = category[order]
    table = pa.table(
        {
            "ticket_id": _numbered("T", np.arange(1, len(order) + 1, dtype=np.int64), 7),
            "account_id": acc.ids.take(pa.array(account)),
            "contact_id": con.ids.take(pa.array(contact)),
            "opened_at": _ts(opened),
            "priority": _labels(PRIORITIES, priority),
            "category": _labels(CATEGORIES, category),
            "status": _labels(("open", "solved"), (resolved <= t_end).astype(np.int64)),
        }
    )
    return _Tickets(table, account, contact, opened, resolved, priority, surge)


def _make_surveys(
    rng: np.random.Generator, acc: _Accounts, con: _Contacts, tickets: _Tickets, t_end: int
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
            "response_id": _numbered("R", np.arange(1, len(ts) + 1, dtype=np.int64), 7),
            "contact_id": con.ids.take(pa.array(contact[order])),
            "kind": _labels(("nps", "csat"), is_csat[order].astype(np.int64)),
            "score": pa.array(score[order]),
            "answered_at": _ts(ts[order]),
            "comment": comment.take(pa.array(order)),
        }
    )


def _nps_answers(
    rng: np.random.Generator, acc: _Accounts, con: _Contacts
) -> tuple[I64, I64, I64]:
    """NPS campaigns: most accounts answer now and then once they are a month old."""
    lo = acc.created + 30 * DAY
    eligible = lo < acc.stop
    responds = eligible & (rng.random(acc.n) < np.where(acc.inactive, 0.3, 0.7))
    years = np.maximum(acc.stop - lo, 0) / (365.0 * DAY)
    count = np.where(responds, 1 + rng.poisson(1.0 * years), 0)
    account = np.repeat(np.arange(acc.n, dtype=np.int64), count)
    ts = _sample_times(
        rng, acc, account, lo[account], acc.stop[account], np.zeros(len(account), np.bool_)
    )
    contact = _pick_contacts(rng, con, account, ts, NPS_ROLE_WEIGHT[con.role])
    # Sentiment sours as a planned cancellation approaches.
    closeness = np.clip(1.0 - (acc.risk_at[account] - ts) / (90.0 * DAY), 0.0, 1.0)
    latent = 7.0 + 1.7 * acc.health[account] - 3.0 * closeness + rng.normal(0, 1.4, len(ts))
    return contact, ts, np.clip(np.round(latent), 0, 10).astype(np.int64)


def _csat_answers(
    rng: np.random.Generator, acc: _Accounts, tickets: _Tickets, t_end: int
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


# ---------------------------------------------------------------------------------------
# billing, consent, identities
# ---------------------------------------------------------------------------------------


def _subscriptions_table(rng: np.random.Generator, acc: _Accounts, t_end: int) -> pa.Table:
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
            "subscription_id": _numbered("S", np.arange(1, acc.n + 1, dtype=np.int64), 6),
            "account_id": acc.ids,
            "plan": _labels(PLANS, acc.tier),
            "status": _labels(("active", "cancelled"), acc.churned.astype(np.int64)),
            "mrr": pa.array(mrr),
            "seats": pa.array(acc.seats),
            "started_at": _ts(started),
            "renews_at": _ts(renews),
            "cancelled_at": _ts(np.where(acc.churned, acc.risk_at, 0), null=~acc.churned),
        }
    )


def _consents_table(rng: np.random.Generator, con: _Contacts, t_end: int) -> pa.Table:
    """An append-only consent log; the latest row per contact/purpose/channel wins.

    EU marketing is opt-in (explicit consent, often denied, sometimes withdrawn later); US
    marketing is mostly opt-out on legitimate interest.  Product updates in-app rest on the
    contract; success outreach by phone on legitimate interest.
    """
    m = con.n
    eu = con.country != US_INDEX
    u = rng.random(m)

    # marketing / email at signup
    us_consent = (~eu) & (rng.random(m) < 0.15)
    mk_basis = np.where(eu | us_consent, 0, 1)
    mk_granted = np.where(eu, u < 0.58, np.where(us_consent, u < 0.7, u < 0.95))
    mk_status = np.where(mk_granted, 0, 2)
    mk_source = np.where(rng.random(m) < 0.75, 0, 2)

    # later withdrawals of granted marketing consent
    room = t_end - con.created
    withdraw = mk_granted & (room > 2 * HOUR) & (rng.random(m) < np.where(eu, 0.18, 0.12))
    w_at = con.created + HOUR + np.floor(rng.random(m) * (room - HOUR)).astype(np.int64)
    w_source = np.where(rng.random(m) < 0.8, 1, 3)

    # product updates in-app: everyone but half of the executives
    pu = (con.role != EXECUTIVE) | (rng.random(m) < 0.5)

    # success outreach by phone: managers and executives, some practitioners
    so = (con.role != PRACTITIONER) | (rng.random(m) < 0.15)
    so_granted = rng.random(m) < np.where(eu, 0.7, 0.9)
    so_at = con.created + np.floor(
        rng.random(m) * np.minimum(room, 30 * DAY)
    ).astype(np.int64)
    so_source = np.where(rng.random(m) < 0.35, 3, 2)

    everyone = np.arange(m, dtype=np.int64)
    blocks = [
        (everyone, 0, 0, mk_status, mk_basis, con.created, mk_source),
        (everyone[withdraw], 0, 0, 1, mk_basis[withdraw], w_at[withdraw], w_source[withdraw]),
        (everyone[pu], 1, 2, 0, 2, con.created[pu], 0),
        (everyone[so], 2, 1, np.where(so_granted[so], 0, 2), 1, so_at[so], so_source[so]),
    ]
    cols: list[list[I64]] = [[] for _ in range(7)]
    for block in blocks:
        rows = block[0]
        for i, value in enumerate(block):
            cols[i].append(np.broadcast_to(np.asarray(value, dtype=np.int64), rows.shape))
    contact, purpose, channel, status, basis, at, source = (np.concatenate(c) for c in cols)

    order = np.argsort(at, kind="stable")
    contact = contact[order]
    state = con.state[contact]
    us_juris = pc.binary_join_element_wise(
        "US-", _labels(US_STATES, state, null=state < 0), ""
    )
    jurisdiction = pc.if_else(pa.array(state < 0), "EU", us_juris)
    return pa.table(
        {
            "contact_id": con.ids.take(pa.array(contact)),
            "purpose": _labels(PURPOSES, purpose[order]),
            "channel": _labels(CHANNELS, channel[order]),
            "status": _labels(CONSENT_STATUS, status[order]),
            "legal_basis": _labels(LEGAL_BASES, basis[order]),
            "jurisdiction": jurisdiction,
            "recorded_at": _ts(at[order]),
            "source": _labels(CONSENT_SOURCES, source[order]),
        }
    )


def _make_identities(rng: np.random.Generator, acc: _Accounts) -> tuple[I64, pa.Array, pa.Table]:
    """Legacy CRM ids for ~20 % of accounts; returns alias index per account (-1 = none)."""
    has_alias = rng.random(acc.n) < ALIAS_ACCOUNT_SHARE
    owners = np.flatnonzero(has_alias)
    space = max(10**6, 10 * len(owners))
    # Legacy numbers are random: the old CRM's numbering is unrelated to the new one.
    numbers = rng.choice(space, size=len(owners), replace=False).astype(np.int64)
    alias_of = np.full(acc.n, -1, dtype=np.int64)
    alias_of[owners] = np.arange(len(owners))
    alias_ids = _numbered("legacy-", numbers, len(str(space - 1)))
    table = pa.table({"source_id": alias_ids, "account_id": acc.ids.take(pa.array(owners))})
    return alias_of, alias_ids, table


# ---------------------------------------------------------------------------------------
# entry point
# ---------------------------------------------------------------------------------------


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
    acc = _make_accounts(r_acc, accounts, t_end)
    accounts_table = _accounts_table(r_acc, acc)
    con, contacts_table = _make_contacts(r_con, acc)
    alias_of, alias_ids, identities_table = _make_identities(r_ids, acc)
    events_table = _make_events(r_evt, acc, con, alias_of, alias_ids, target, t_end)
    tickets = _make_tickets(r_tix, acc, con, t_end)
    surveys_table = _make_surveys(r_srv, acc, con, tickets, t_end)

    tables = {
        "accounts": accounts_table,
        "contacts": contacts_table,
        "events": events_table,
        "tickets": tickets.table,
        "surveys": surveys_table,
        "subscriptions": _subscriptions_table(r_sub, acc, t_end),
        "consents": _consents_table(r_cns, con, t_end),
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
