"""The ledger and the decision log in a PostgreSQL state store: the same plan, the same
idempotency, the same decisions as with the default DuckDB file."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from retainer.consent import log
from retainer.playbooks import ledger
from retainer.playbooks.keys import is_held_out
from retainer.project import Project
from tests.playbooks.conftest import PROJECT, Writer, act_on

PLAYBOOKS = """
destinations:
  outbox: {type: files, dir: outbox, format: parquet}
consent: {jurisdiction: country}
playbooks:
  tips:
    purpose: marketing
    on: {in: stage.quiet, every: 7d}
    holdout: 30%
    actions:
      - message: {to: outbox, template: tips}
      - task: {owner: owner, title: "Quiet: {name}"}
  exits:
    purpose: operations
    on: {exit: stage.fresh}
    actions: [{route: {queue: q}}]
"""


def test_act_on_a_postgres_store(make_project: Writer, postgres_url: str) -> None:
    project = PROJECT.replace("name: acts\n", f"name: acts\nstate: \"{postgres_url}\"\n")
    root = make_project(PLAYBOOKS, runs=("baseline", "second", "third"), project=project)
    first = act_on(root)
    assert first.ok and first.written > 0
    again = act_on(root)
    assert again.written == 0 and again.retried == 0
    with Project(root).store() as store:
        rows = ledger.entries(store)
        decided = log.query(store, limit=None)
    assert len(rows) == first.written
    statuses = Counter((e.playbook, e.action_kind, e.status) for e in rows)
    held = statuses[("tips", "message", "held_out")]
    assert statuses[("tips", "task", "held_out")] == held
    # a1, a2 and a3 are all quiet at the third run; a3 left `fresh` at it.
    assert sum(n for (p, k, _), n in statuses.items() if p == "tips" and k == "task") == 3
    assert statuses[("exits", "route", "recorded")] == 1
    # Messages reach c1 (DE, opt-in, nothing recorded: suppressed), c2 and c3 (US: sent),
    # c4 (FR: suppressed), unless their account is held out.
    sent = {d.contact_id: d.outcome for d in decided}
    assert set(sent.values()) <= {"sent", "suppressed"}
    assert all(sent[c] == "suppressed" for c in ("c1", "c4") if c in sent)
    assert all(sent[c] == "sent" for c in ("c2", "c3") if c in sent)
    assert len(decided) == sum(n for (p, k, s), n in statuses.items()
                               if k == "message" and s in ("sent", "suppressed"))
    # A week on, every quiet stay reaches its next `every`: 02-20 + 7d for a1 and a3,
    # 01-16 + 6 × 7d for a2 — the same day, each once.
    Project(root).run(datetime(2026, 2, 28))
    later = act_on(root)
    tasks = {(i.entity_id, i.outcome, f"{i.occurrence:%m-%d}") for i in later.plan.items
             if i.playbook == "tips" and i.action_kind == "task"}
    assert tasks == {(e, "held_out" if is_held_out(0.3, "acts", "tips", e) else "fire",
                      "02-27") for e in ("a1", "a2", "a3")}
