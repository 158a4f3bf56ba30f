"""Identities: legacy CRM ids that still map to today's accounts."""

from __future__ import annotations

from typing import Final

import numpy as np
import pyarrow as pa

from retainer.demo.accounts import Accounts
from retainer.demo.arrays import I64, numbered

ALIAS_ACCOUNT_SHARE: Final = 0.20


def make_identities(rng: np.random.Generator, acc: Accounts) -> tuple[I64, pa.Array, pa.Table]:
    """Legacy CRM ids for ~20 % of accounts; returns alias index per account (-1 = none)."""
    has_alias = rng.random(acc.n) < ALIAS_ACCOUNT_SHARE
    owners = np.flatnonzero(has_alias)
    space = max(10**6, 10 * len(owners))
    # Legacy numbers are random: the old CRM's numbering is unrelated to the new one.
    numbers = rng.choice(space, size=len(owners), replace=False).astype(np.int64)
    alias_of = np.full(acc.n, -1, dtype=np.int64)
    alias_of[owners] = np.arange(len(owners))
    alias_ids = numbered("legacy-", numbers, len(str(space - 1)))
    table = pa.table({"source_id": alias_ids, "account_id": acc.ids.take(pa.array(owners))})
    return alias_of, alias_ids, table
