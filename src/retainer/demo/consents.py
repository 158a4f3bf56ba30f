"""Consents: an append-only log of who agreed to be contacted, for what, how and why."""

from __future__ import annotations

from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from retainer.demo.accounts import US_INDEX, US_STATES
from retainer.demo.arrays import DAY, HOUR, I64, labels, timestamps
from retainer.demo.contacts import EXECUTIVE, PRACTITIONER, Contacts

PURPOSES: Final = ("marketing", "product_updates", "success_outreach")
CHANNELS: Final = ("email", "phone", "in_app")
CONSENT_STATUS: Final = ("granted", "withdrawn", "denied")
LEGAL_BASES: Final = ("consent", "legitimate_interest", "contract")
CONSENT_SOURCES: Final = ("signup_form", "preference_center", "import", "support_call")


def consents_table(rng: np.random.Generator, con: Contacts, t_end: int) -> pa.Table:
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
        "US-", labels(US_STATES, state, null=state < 0), ""
    )
    jurisdiction = pc.if_else(pa.array(state < 0), "EU", us_juris)
    return pa.table(
        {
            "contact_id": con.ids.take(pa.array(contact)),
            "purpose": labels(PURPOSES, purpose[order]),
            "channel": labels(CHANNELS, channel[order]),
            "status": labels(CONSENT_STATUS, status[order]),
            "legal_basis": labels(LEGAL_BASES, basis[order]),
            "jurisdiction": jurisdiction,
            "recorded_at": timestamps(at[order]),
            "source": labels(CONSENT_SOURCES, source[order]),
        }
    )
