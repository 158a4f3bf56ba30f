"""The decision log: an append-only record of every automated decision about a person.

Each row says what was decided (sent, recorded, suppressed, failed), why, for which purpose
and channel, under which jurisdiction policy and rule, on which consent record (its status,
time, legal basis and origin), by which rulebook version and act. Rows are only ever
inserted; erasure replaces the person's id with a tombstone and keeps the decision.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import astuple, dataclass, fields
from datetime import datetime
from typing import Any

from sqlglot import exp

from retainer.consent.gate import Decision
from retainer.state import Store

OUTCOMES = ("sent", "recorded", "suppressed", "failed")


@dataclass(frozen=True)
class LoggedDecision:
    decision_id: int
    decided_at: datetime
    action_key: str | None
    playbook: str | None
    account_id: str | None
    contact_id: str | None
    purpose: str
    channel: str | None
    outcome: str
    reason: str
    rule: str | None
    legal_basis: str | None
    jurisdiction: str | None
    policy: str | None
    consent_status: str | None
    consent_recorded_at: datetime | None
    consent_source: str | None
    rulebook_hash: str
    act_id: int | None

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


COLUMNS = tuple(f.name for f in fields(LoggedDecision))


def entry(decision: Decision, outcome: str, decided_at: datetime, *, action_key: str | None,
          playbook: str | None, account_id: str | None, contact_id: str,
          rulebook_hash: str, act_id: int | None, note: str | None = None) -> LoggedDecision:
    """A log row for a gate decision and what then happened (`note`: e.g. the delivery
    error of a failed send)."""
    reason = decision.reason + (f"; {note}" if note else "")
    return LoggedDecision(0, decided_at, action_key, playbook, account_id, contact_id,
                          decision.purpose, decision.channel, outcome, reason, decision.rule,
                          decision.legal_basis, decision.jurisdiction, decision.policy,
                          decision.consent_status, decision.consent_recorded_at,
                          decision.consent_source, rulebook_hash, act_id)


def append(store: Store, rows: Sequence[LoggedDecision]) -> None:
    """Append rows (their decision_id is assigned here). Call inside the transaction that
    records what the decisions led to."""
    if not rows:
        return
    import pyarrow as pa
    first = int(store.backend.fetch("SELECT coalesce(max(decision_id), 0) + 1 FROM "
                                    "decisions")[0][0])
    types = {"decision_id": pa.int64(), "act_id": pa.int64(), "decided_at": pa.timestamp("us"),
             "consent_recorded_at": pa.timestamp("us")}
    values = [astuple(row)[1:] for row in rows]
    table = pa.table({name: pa.array(
        [first + i for i in range(len(rows))] if name == "decision_id"
        else [v[index - 1] for v in values], types.get(name, pa.string()))
        for index, name in enumerate(COLUMNS)})
    store.backend.load("incoming_decisions", table)
    names = ", ".join(COLUMNS)
    store.backend.execute(f"INSERT INTO decisions ({names}) SELECT {names} "
                          "FROM incoming_decisions")
    store.backend.execute("DROP TABLE IF EXISTS incoming_decisions")


def query(store: Store, *, contact: str | None = None, account: str | None = None,
          playbook: str | None = None, outcome: str | None = None,
          since: datetime | None = None, limit: int | None = 100) -> list[LoggedDecision]:
    """Decisions matching every filter given, newest first."""
    select = exp.select(*COLUMNS).from_("decisions")
    parameters: list[Any] = []
    for column, value in (("contact_id", contact), ("account_id", account),
                          ("playbook", playbook), ("outcome", outcome)):
        if value is not None:
            select = select.where(exp.column(column).eq(exp.Placeholder()))
            parameters.append(value)
    if since is not None:
        select = select.where(exp.GTE(this=exp.column("decided_at"),
                                      expression=exp.Placeholder()))
        parameters.append(since)
    select = select.order_by(exp.Ordered(this=exp.column("decision_id"), desc=True))
    if limit is not None:
        select = select.limit(limit)
    return [LoggedDecision(*row) for row in store.backend.fetch(select, parameters)]
