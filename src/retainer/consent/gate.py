"""Allowed or suppressed: the decision for one person, purpose and channel, right now.

The gate holds the consents source as read at dispatch (see records.py) and each contact's
jurisdiction column; `decide` applies the jurisdiction's rule for the purpose:

* `opt_in`  — only a granted consent allows; none recorded, denied or withdrawn suppress.
* `opt_out` — allowed unless the latest record is denied or withdrawn.
* `none`    — the purpose needs no consent (e.g. service notices); always allowed.

The reason is written for people reading the decision log ("granted 2026-03-01 via
signup_form (consent)", "EU marketing is opt-in and no consent is recorded").
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime

from retainer.consent.policy import resolve
from retainer.consent.records import STATUSES, ConsentRecord, read_consents
from retainer.rulebook.loader import Rulebook
from retainer.rulebook.playbook_models import ConsentSettings


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    purpose: str
    channel: str | None
    jurisdiction: str | None
    policy: str
    rule: str
    legal_basis: str | None = None
    consent_status: str | None = None
    consent_recorded_at: datetime | None = None
    consent_source: str | None = None

    @property
    def outcome(self) -> str:
        return "allowed" if self.allowed else "suppressed"


class ConsentGate:
    def __init__(self, settings: ConsentSettings, records: Collection[ConsentRecord],
                 jurisdictions: Mapping[str, str | None] | None = None) -> None:
        self.settings = settings
        self.jurisdictions = dict(jurisdictions or {})
        self._records: dict[tuple[str, str], list[ConsentRecord]] = {}
        self._located: dict[str, ConsentRecord] = {}  # latest record with a jurisdiction
        for record in records:
            self._records.setdefault((record.contact_id, record.purpose), []).append(record)
            held = self._located.get(record.contact_id)
            if record.jurisdiction and (held is None or record.rank() > held.rank()):
                self._located[record.contact_id] = record

    @classmethod
    def read(cls, rulebook: Rulebook, now: datetime, contacts: Collection[str] | None = None,
             jurisdictions: Mapping[str, str | None] | None = None) -> ConsentGate:
        """A gate over the consents recorded up to `now` (read from the source now)."""
        return cls(rulebook.consent, read_consents(rulebook, now, contacts), jurisdictions)

    def latest(self, contact_id: str, purpose: str, channel: str | None
               ) -> ConsentRecord | None:
        """The record in force: the latest for the channel or for no channel in particular
        (a record without one — "no more marketing" — covers every channel), or across
        channels when `channel` is None."""
        found = [r for r in self._records.get((contact_id, purpose.lower()), [])
                 if channel is None or r.channel is None or r.channel == channel.lower()]
        return max(found, key=ConsentRecord.rank) if found else None

    def jurisdiction(self, contact_id: str, record: ConsentRecord | None) -> str | None:
        """The record's jurisdiction, else the latest the contact's records state, else the
        contacts column (`consent.jurisdiction`)."""
        if record is not None and record.jurisdiction:
            return record.jurisdiction
        located = self._located.get(contact_id)
        return located.jurisdiction if located else self.jurisdictions.get(contact_id)

    def decide(self, contact_id: str, purpose: str, channel: str | None) -> Decision:
        record = self.latest(contact_id, purpose, channel)
        jurisdiction = self.jurisdiction(contact_id, record)
        resolved = resolve(self.settings, jurisdiction, purpose)
        label = resolved.label(purpose)

        def decision(allowed: bool, reason: str) -> Decision:
            return Decision(allowed, reason, purpose, channel, resolved.jurisdiction,
                            resolved.policy, resolved.rule,
                            record.legal_basis if record else None,
                            record.status if record else None,
                            record.recorded_at if record else None,
                            record.origin if record else None)

        if resolved.rule == "none":
            return decision(True, f"{label} needs no consent")
        if record is None:
            if resolved.rule == "opt_in":
                return decision(False, f"{label} is opt-in and no consent is recorded")
            return decision(True, f"{label} is opt-out: no objection recorded")
        when = f"{record.recorded_at:%Y-%m-%d}"
        via = f" via {record.origin}" if record.origin else ""
        if record.status == "granted":
            basis = f" ({record.legal_basis})" if record.legal_basis else ""
            return decision(True, f"granted {when}{via}{basis}")
        if record.status in STATUSES:
            return decision(False, f"{record.status} {when}{via}")
        return decision(False, f"the latest record ({when}) has status '{record.status}', "
                               "which is not granted, denied or withdrawn")
