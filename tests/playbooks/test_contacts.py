"""Contact playbooks: triggers on contact tags, `when` over the contact and its account,
actions that reach the contact itself, and an account playbook that stops them."""

from __future__ import annotations

import json

from tests.playbooks.conftest import SEGMENTS, Writer, act_on, decision_rows, ledger_rows, run

CONTACT_SEGMENTS = SEGMENTS + """
  executive: {entity: contact, when: "role = 'executive'"}
"""
PLAYBOOKS = """
destinations:
  outbox: {type: files, dir: outbox, format: csv}
consent: {jurisdiction: country}
playbooks:
  exec_hello:
    purpose: operations
    entity: contact
    on: {in: executive}
    when: "account.stage <> 'quiet' and role = 'executive'"
    actions:
      - message: {to: outbox, template: hello}
      - task: {owner: owner, title: "Meet {contact_id} of {name} ({stage})"}
  exec_weekly:
    purpose: operations
    entity: contact
    on: {in: executive, every: 7d}
    actions: [{route: {queue: executives}}]
  quiet_account:
    purpose: operations
    on: {in: stage.quiet}
    stops: [exec_weekly]
    actions: [{route: {queue: quiet}}]
"""


def test_contact_playbooks_reach_the_contact(make_project: Writer) -> None:
    root = make_project(PLAYBOOKS, segments=CONTACT_SEGMENTS)
    report = act_on(root)
    assert report.ok
    hello = {r["action_kind"]: r for r in ledger_rows(root, "playbook = 'exec_hello'")}
    assert hello["message"]["entity_id"] == "c2" and hello["message"]["contact_id"] == "c2"
    assert hello["message"]["account_id"] == "a1" and hello["message"]["status"] == "sent"
    task = json.loads(hello["task"]["payload"])
    assert task["title"] == "Meet c2 of Acme (active)" and task["owner"] == "ana@us.example"
    assert task["contact"]["id"] == "c2"            # the task carries its contact
    assert [d["contact_id"] for d in decision_rows(root)] == ["c2", "c2", "c2"]
    assert hello["message"]["reason"] == ("in tag executive since 2026-01-05 (11 days); "
                                          "account.stage = active, role = executive")


def test_an_account_playbook_stops_its_contacts_playbooks(make_project: Writer) -> None:
    root = make_project(PLAYBOOKS, segments=CONTACT_SEGMENTS)
    act_on(root)
    run(root, "third")                               # a1 is quiet now
    plan = act_on(root).plan
    weekly = [i for i in plan.items if i.playbook == "exec_weekly"]
    assert [(i.entity_id, i.outcome, i.why_not) for i in weekly] == [
        ("c2", "stopped", "stopped by quiet_account (stage.quiet)")]
    hello = [i for i in plan.items if i.playbook == "exec_hello"]
    assert [i.outcome for i in hello] == ["no_match", "no_match"]   # its account is quiet
