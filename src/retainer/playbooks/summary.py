"""An act's outcome as rows for people: per playbook counts, and one line per item.

Kept apart from the command line so the same rows feed the terminal table and `--format
json`.
"""

from __future__ import annotations

from typing import Any

from retainer.playbooks import plan
from retainer.playbooks.act import ActReport
from retainer.playbooks.plan import Item

PLAN_COLUMNS = (("fire", plan.FIRE), ("held out", plan.HELD_OUT), ("stopped", plan.STOPPED),
                ("cooldown", plan.COOLDOWN), ("capped", plan.CAPPED),
                ("no recipient", plan.NO_RECIPIENT), ("when false", plan.NO_MATCH),
                ("done before", plan.DONE))
DISPATCH_COLUMNS = ("sent", "recorded", "suppressed", "failed", "rejected")
# What a dry run lists item by item (the others are only counted).
LISTED = (plan.FIRE, plan.HELD_OUT, plan.STOPPED, plan.COOLDOWN, plan.CAPPED,
          plan.NO_RECIPIENT)


def counts(report: ActReport) -> list[dict[str, Any]]:
    """One row per playbook: plan outcomes, and (after a real act) dispatch statuses."""
    rows = []
    planned = report.plan.counts()
    for name in report.plan.playbooks:
        row: dict[str, Any] = {"playbook": name}
        row.update({label: planned[name][outcome] for label, outcome in PLAN_COLUMNS})
        if not report.dry_run:
            row.update({status: report.dispatched.counts[(name, status)]
                        for status in DISPATCH_COLUMNS})
        rows.append(row)
    return rows


def item_row(item: Item, consent: str | None = None) -> dict[str, Any]:
    return {"playbook": item.playbook, "entity": item.entity_id,
            "account": item.account_id, "contact": item.contact_id,
            "action": item.summary or item.action_kind,
            "to": f"{item.destination}/{item.stream}" if item.destination else "ledger",
            "outcome": item.outcome, "why": item.why, "why_not": item.why_not,
            "consent": consent, "occurrence": item.occurrence.isoformat(),
            "trigger": item.trigger_kind, "key": item.key,
            "due": item.due_at.isoformat() if item.due_at else None}


def listed(report: ActReport) -> list[dict[str, Any]]:
    return [item_row(i, report.consent.get(i.key)) for i in report.plan.items
            if i.outcome in LISTED]
