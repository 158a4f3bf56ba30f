"""Contacts: the people at each account, with their role, country and join date."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from retainer.demo.accounts import COUNTRIES, EU_P, US_INDEX, US_STATE_W, US_STATES, Accounts
from retainer.demo.arrays import (
    CHUNK,
    F64,
    I64,
    Str,
    labels,
    numbered,
    timestamps,
    weighted_choice,
)

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


@dataclass(frozen=True)
class Contacts:
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


def make_contacts(rng: np.random.Generator, acc: Accounts) -> tuple[Contacts, pa.Table]:
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
    country = np.where(abroad, weighted_choice(rng, 5, m, EU_P), acc.hq_country[account])
    moved = rng.random(m) < 0.25
    other_state = weighted_choice(rng, len(US_STATES), m, US_STATE_W)
    state = np.where(country == US_INDEX, np.where(moved, other_state, acc.hq_state[account]), -1)

    first, last = _person_names(rng, country)
    numbers = np.arange(1, m + 1, dtype=np.int64)
    ids = numbered("C", numbers, max(7, len(str(m))))
    email = pc.binary_join_element_wise(
        pa.array(np.strings.lower(first)), ".", pa.array(np.strings.lower(last)), ".",
        pc.cast(pa.array(numbers), pa.string()), "@", pa.array(acc.domains[account]), "",
    )
    con = Contacts(
        ids=ids, account=account, role=role.astype(np.int64), country=country, state=state,
        created=created, block_start=block_start, block_len=count,
    )
    table = pa.table(
        {
            "contact_id": ids,
            "account_id": acc.ids.take(pa.array(account)),
            "email": email,
            "name": pa.array(np.strings.add(np.strings.add(first, " "), last)),
            "role": labels(ROLES, con.role),
            "country": labels(COUNTRIES, country),
            "state": labels(US_STATES, state, null=state < 0),
            "created_at": timestamps(created),
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


def pick_contacts(
    rng: np.random.Generator,
    con: Contacts,
    account: I64,
    ts: I64,
    weight: F64,
) -> I64:
    """A contact of each row's account, drawn ∝ ``weight``, who already existed at ``ts``.

    Inverse-CDF sampling on one global cumulative sum (contacts of an account are
    contiguous) turns this into a searchsorted, done chunk by chunk like timing.sample_times.
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
