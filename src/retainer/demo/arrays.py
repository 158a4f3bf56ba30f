"""Building blocks shared by the demo tables: array types, time units, draws, columns.

Everything works on whole numpy arrays (one element per account, contact or row) and ends
in Arrow columns, so the generator never loops over rows in Python.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Bool = npt.NDArray[np.bool_]
Str = npt.NDArray[np.str_]
Codes = npt.NDArray[np.integer[Any]]  # category codes of any integer width

DAY: Final = 86_400
HOUR: Final = 3_600
# Sentinel "never" far beyond any end date; keeps arithmetic branch-free.
NEVER: Final = 2**52
CHUNK: Final = 1 << 18  # rows per block in the hot loops (see timing.sample_times)


def sigmoid(x: F64) -> F64:
    return 1.0 / (1.0 + np.exp(-x))


def calibrated_intercept(logit: F64, weight: F64, target: float) -> float:
    """Intercept ``a`` with ``mean(weight * sigmoid(a + logit)) == target`` (bisection).

    Solving instead of hard-coding keeps the churn rate on target for any size or seed.
    """
    lo, hi = -30.0, 30.0
    for _ in range(80):
        mid = (lo + hi) / 2
        if float(np.mean(weight * sigmoid(mid + logit))) < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def weighted_choice(rng: np.random.Generator, options: int, size: int, p: tuple[float, ...]) -> I64:
    weights = np.asarray(p, dtype=np.float64)
    return rng.choice(options, size=size, p=weights / weights.sum())


def categorical(rng: np.random.Generator, probs: F64) -> I64:
    """One draw per row of a (rows x categories) probability matrix."""
    cum = np.cumsum(probs, axis=1)
    u = rng.random(len(probs)) * cum[:, -1]
    drawn: I64 = (u[:, None] >= cum[:, :-1]).sum(axis=1).astype(np.int64)
    return drawn


def numbered(prefix: str, numbers: I64, width: int) -> pa.Array:
    """``prefix`` + zero-padded number, e.g. ``A000042``."""
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers, pa.int64()), pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, digits, "")


def labels(values: tuple[str, ...], codes: Codes, null: Bool | None = None) -> pa.Array:
    """Turn category codes into a plain string column (``null`` marks missing values)."""
    codes = np.where(codes < 0, 0, codes) if null is not None else codes
    idx = pa.array(codes.astype(np.int32), mask=null)
    return pa.array(values, pa.string()).take(idx)


def timestamps(seconds: I64, null: Bool | None = None) -> pa.Array:
    return pa.array(seconds.astype(np.int64), pa.timestamp("s"), mask=null)


def uniform_between(rng: np.random.Generator, lo: I64, hi: I64) -> I64:
    return lo + np.floor(rng.random(len(lo)) * (hi - lo)).astype(np.int64)
