"""When things happen: business hours, quiet weekends, onboarding ramp, decay before churn.

Shared by events, tickets and surveys, which all draw their times here.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from retainer.demo.accounts import Accounts
from retainer.demo.arrays import CHUNK, DAY, F64, HOUR, I64, Bool, uniform_between

# Rough offset of local business hours to UTC, in hours (EU ~ CET, US ~ central time).
REGION_UTC_OFFSET: Final = np.array([1.0, -6.0])
RAMP_DAYS: Final = 21.0
RAMP_FLOOR: Final = 0.1
DECAY_FLOOR: Final = 0.05
WEEKEND_WEIGHT: Final = 0.3


def _profile(t: F64 | I64, account: npt.NDArray[np.intp] | I64, acc: Accounts) -> F64:
    """Relative usage intensity at time ``t``: onboarding ramp x pre-cancellation decay."""
    ramp = np.clip(
        RAMP_FLOOR + (1 - RAMP_FLOOR) * (t - acc.created[account]) / (RAMP_DAYS * DAY),
        RAMP_FLOOR, 1.0,
    )
    risk = acc.risk_at[account]
    left = np.clip((risk - t) / (risk - acc.decay_start[account]), 0.0, 1.0)
    return ramp * (DECAY_FLOOR + (1 - DECAY_FLOOR) * left)


def exposure_days(acc: Accounts) -> F64:
    """Integral of the usage profile over each account's life, in days (midpoint rule)."""
    steps = 48
    frac = (np.arange(steps) + 0.5) / steps
    span = (acc.stop - acc.created).astype(np.float64)
    t = acc.created[:, None] + frac[None, :] * span[:, None]
    rows = np.arange(acc.n)[:, None]
    mean_profile: F64 = _profile(t, rows, acc).mean(axis=1)
    return mean_profile * span / DAY


def sample_times(
    rng: np.random.Generator,
    acc: Accounts,
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
    acc: Accounts,
    to_utc: I64,
    account: I64,
    lo: I64,
    hi: I64,
    shaped: Bool,
) -> I64:
    """Rejection sampling for one chunk of :func:`sample_times`.

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
        out[todo] = uniform_between(rng, lo[todo], hi[todo])
    return out
