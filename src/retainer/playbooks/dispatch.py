"""Dispatch: the ledger's pending rows through the consent gate to their destinations.

For every row that reaches a person, the gate decides with the consents recorded up to
this moment (read from the source just before dispatch, so a withdrawal recorded after the
run still stops the message). Suppressed rows are marked and logged first; the others are
delivered per destination and stream, in batches, keyed by their action key — a
redelivery after a crash or a retry replaces, never duplicates. Each batch's statuses and
decisions are written in one transaction once the destination confirmed it (or refused
it).

A retryable failure (down, timeout, 5xx) leaves the row `failed`, retried by the next act
until `act.max_attempts`; a refusal, or the last attempt, makes it `rejected`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from retainer.consent import log
from retainer.consent.gate import ConsentGate, Decision
from retainer.destinations import Destination, Record
from retainer.destinations.base import DeliveryError
from retainer.errors import RetainerError
from retainer.playbooks import ledger
from retainer.playbooks.ledger import Entry
from retainer.privacy.tombstones import Forgotten
from retainer.rulebook.loader import Rulebook
from retainer.state import Store

Opener = Callable[[str, Rulebook], Destination]
Update = tuple[str, str, datetime | None, int, str | None]


@dataclass
class DispatchReport:
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)  # (playbook, status)
    failures: list[str] = field(default_factory=list)       # one line per failed batch

    def total(self, status: str) -> int:
        return sum(n for (_, s), n in self.counts.items() if s == status)

    @property
    def ok(self) -> bool:
        return not self.total("failed") and not self.total("rejected")


@dataclass(frozen=True)
class _Context:
    rulebook: Rulebook
    store: Store
    act_id: int
    now: datetime
    max_attempts: int
    emails: Mapping[str, str | None]


def consent_gate(rulebook: Rulebook, now: datetime, entries: Sequence[Entry],
                 jurisdictions: Mapping[str, str | None]) -> ConsentGate | None:
    """The gate over the consents recorded up to `now` of the entries' contacts, read from
    the source now; None when no entry reaches a person. `jurisdictions` is the contacts'
    column read from the source now."""
    people = sorted({e.contact_id for e in entries if e.contact_id is not None})
    return ConsentGate.read(rulebook, now, people, jurisdictions) if people else None


def dispatch(rulebook: Rulebook, store: Store, entries: Sequence[Entry], act_id: int,
             now: datetime, gate: ConsentGate | None,
             emails: Mapping[str, str | None] | None = None,
             opener: Opener | None = None) -> DispatchReport:
    """Deliver (or suppress) every entry; returns the counts by final status. `gate` is
    `consent_gate` of the entries at `now`; `emails` the contacts' addresses read from the
    source now."""
    from retainer.destinations import open_destination
    report = DispatchReport()
    if not entries:
        return report
    emails = emails or {}
    ctx = _Context(rulebook, store, act_id, now, rulebook.config.act.max_attempts, emails)
    forgotten = Forgotten.of(store)
    decisions: dict[str, Decision] = {}
    allowed: list[Entry] = []
    suppressed: list[tuple[Entry, Decision]] = []
    for entry in entries:
        if entry.contact_id is None:
            allowed.append(entry)
            continue
        assert gate is not None
        decision = gate.decide(entry.contact_id, entry.purpose, entry.channel)
        if forgotten(entry.contact_id, emails.get(entry.contact_id)):
            decision = Decision(False, "the person was forgotten on request",
                                decision.purpose, decision.channel, decision.jurisdiction,
                                decision.policy, decision.rule)
        decisions[entry.action_key] = decision
        if decision.allowed:
            allowed.append(entry)
        else:
            suppressed.append((entry, decision))
    # The gate's reason goes with the row, so the ledger says why nothing was sent.
    _finish(ctx, [(e, "suppressed", d.reason) for e, d in suppressed], decisions, report)
    groups: dict[tuple[str | None, str | None], list[Entry]] = {}
    for entry in allowed:
        groups.setdefault((entry.destination, entry.stream), []).append(entry)
    if (None, None) in groups:
        _finish(ctx, [(e, "recorded", None) for e in groups.pop((None, None))], decisions,
                report)
    destinations: dict[str, Destination] = {}
    try:
        for (name, stream), members in groups.items():
            assert name is not None
            _deliver(ctx, name, stream or "", members, destinations, opener or
                     open_destination, decisions, report)
    finally:
        for destination in destinations.values():
            destination.close()
    return report


def _deliver(ctx: _Context, name: str, stream: str, entries: list[Entry],
             destinations: dict[str, Destination], opener: Opener,
             decisions: Mapping[str, Decision], report: DispatchReport) -> None:
    try:
        if name not in destinations:
            destinations[name] = opener(name, ctx.rulebook)
        destination = destinations[name]
    except RetainerError as exc:
        # A destination that cannot be opened (a missing secret, a server down) is
        # retried like a failed delivery.
        _fail(ctx, entries, exc.problem.message, True, decisions, report, name, stream)
        return
    size = max(int(getattr(destination, "batch_size", 500)), 1)
    for start in range(0, len(entries), size):
        batch = entries[start:start + size]
        records = [Record(e.action_key, e.entity_id, _addressed(e.payload, ctx.emails))
                   for e in batch]
        try:
            destination.deliver(stream, records)
        except DeliveryError as exc:
            _fail(ctx, batch, exc.problem.message, exc.retryable, decisions, report, name,
                  stream)
            continue
        _finish(ctx, [(e, "sent", None) for e in batch], decisions, report)


def _addressed(payload: dict[str, Any], emails: Mapping[str, str | None]
               ) -> dict[str, Any]:
    """The payload with its contact's address as the contacts source has it now: one that
    changed since the action was planned — or since a delivery failed and is retried — is
    the address used. (A contact whose address is gone keeps the planned one in the ledger;
    the consent gate and erasure decide whether it is sent at all.)"""
    contact = payload.get("contact")
    if not isinstance(contact, dict) or "email" not in contact:
        return payload
    current = emails.get(str(contact.get("id")))
    if not current or current == contact["email"]:
        return payload
    return {**payload, "contact": {**contact, "email": current}}


def _fail(ctx: _Context, entries: list[Entry], message: str, retryable: bool,
          decisions: Mapping[str, Decision], report: DispatchReport, name: str,
          stream: str) -> None:
    last = {e.action_key for e in entries if e.attempts + 1 >= ctx.max_attempts}
    rows: list[tuple[Entry, str, str | None]] = []
    for entry in entries:
        final = not retryable or entry.action_key in last
        error = message if not final or not retryable else \
            f"gave up after {entry.attempts + 1} attempts: {message}"
        rows.append((entry, "rejected" if final else "failed", error))
    retry = "will retry at the next act" if retryable and len(last) < len(entries) \
        else "not retried"
    report.failures.append(f"{name}/{stream}: {len(entries)} action(s) failed: {message} "
                           f"({retry})")
    _finish(ctx, rows, decisions, report)


def _finish(ctx: _Context, rows: list[tuple[Entry, str, str | None]],
            decisions: Mapping[str, Decision], report: DispatchReport) -> None:
    """Statuses and decisions of one batch, in one transaction."""
    if not rows:
        return
    updates: list[Update] = []
    logged: list[log.LoggedDecision] = []
    for entry, status, error in rows:
        attempts = entry.attempts + (1 if status in ("sent", "failed", "rejected") else 0)
        updates.append((entry.action_key, status, ctx.now if status == "sent" else None,
                        attempts, error))
        report.counts[(entry.playbook, status)] += 1
        decision = decisions.get(entry.action_key)
        if decision is None or entry.contact_id is None:
            continue
        outcome = {"rejected": "failed"}.get(status, status)
        logged.append(log.entry(decision, outcome, ctx.now, action_key=entry.action_key,
                                playbook=entry.playbook, account_id=entry.account_id,
                                contact_id=entry.contact_id,
                                rulebook_hash=ctx.rulebook.content_hash, act_id=ctx.act_id,
                                note=f"delivery failed: {error}" if error and
                                status != "suppressed" else None))
    with ctx.store.backend.transaction():
        ledger.set_status(ctx.store, updates)
        log.append(ctx.store, logged)
