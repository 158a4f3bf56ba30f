"""Playbooks: the work the segments drive (docs/playbooks.md).

    act.py          `retainer act`: validate, plan, write the ledger, dispatch
    planner.py      the plan: occurrences → checks (when, done, stops, cooldown, holdout, caps)
    occurrences.py  trigger occurrences from the membership history
    conditions.py   `when` and templates over the published results (results.py)
    actions.py      recipients, payloads and summaries of each action (people.py: contacts)
    limits.py       cooldowns and caps over the ledger;  keys.py: idempotency and holdouts
    ledger.py       the ledger and acts tables (tables.py);  dispatch.py: gate and delivery
    validate.py     `retainer validate`'s checks (columns.py: the results' columns)
    erasure.py      a forgotten person in the ledger and the decision log
"""
