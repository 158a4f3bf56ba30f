"""Erasure in the ledger and the decision log: the person becomes a tombstone, their data
leaves every payload, the decisions stay, and nothing more goes out to them."""

from __future__ import annotations

import json
from datetime import datetime

from retainer.playbooks.erasure import forget_contact
from retainer.privacy.erasure import apply_erasure, plan_erasure
from retainer.privacy.tombstones import store_salt, subject_hash, write_tombstone
from retainer.project import Project
from tests.playbooks.conftest import (
    Writer,
    act_on,
    decision_rows,
    ledger_rows,
    with_destinations,
)
from tests.privacy.test_forget import duckdb_dump
from tests.sync.receiver import Receiver

PLAYBOOKS = """
playbooks:
  exec_mail:
    purpose: operations
    when: "tenure_days >= 0"
    cooldown: 1d
    actions:
      - message: {to: outbox, template: hello, roles: [executive]}
      - task: {owner_role: executive, title: "Call the executive of {name}"}
      - message: {to: hook, template: hello, roles: [executive], stream: hooked}
"""


def test_forget_contact_anonymises_and_returns_what_was_delivered(
        make_project: Writer, receiver: Receiver) -> None:
    root = make_project(with_destinations(PLAYBOOKS, receiver.url))
    receiver.script = [500]                       # the webhook copy stays pending
    act_on(root)
    before = {r["action_kind"] + ":" + str(r["destination"]): r for r in ledger_rows(root)}
    assert before["message:outbox"]["status"] == "sent"
    assert before["task:None"]["status"] == "recorded"
    assert before["message:hook"]["status"] == "failed"
    assert [d["contact_id"] for d in decision_rows(root)] == ["c2", "c2", "c2"]

    with Project(root).store() as store, store.backend.transaction():
        delivered, secrets = forget_contact(store, "c2", "tomb-c2")
    assert secrets == ["c2@acme.example", "c2"]
    assert sorted(delivered) == sorted([
        ("outbox", "messages", before["message:outbox"]["action_key"]),
        ("hook", "hooked", before["message:hook"]["action_key"])])
    after = {r["action_key"]: r for r in ledger_rows(root)}
    for row in after.values():
        text = json.dumps({k: str(v) for k, v in row.items()})
        assert "c2" not in text.replace("tomb-c2", "") and "c2@acme.example" not in text
        assert row["contact_id"] == "tomb-c2"
        assert json.loads(row["payload"])["contact"] == {"id": "tomb-c2", "erased": True}
    task = after[before["task:None"]["action_key"]]
    assert json.loads(task["payload"])["owner"] == "[erased]"
    assert json.loads(task["payload"])["title"] == "Call the executive of Acme"
    # The pending copy will not go out any more; what was decided stays decided.
    assert after[before["message:hook"]["action_key"]]["status"] == "suppressed"
    decisions = decision_rows(root)
    assert [d["contact_id"] for d in decisions] == ["tomb-c2"] * 3
    assert {d["reason"] for d in decisions} == {
        "US operations is opt-out: no objection recorded",
        "US operations is opt-out: no objection recorded; delivery failed: destination "
        "'hook' failed after 1 attempt(s): " + receiver.url + " answered 500 Internal "
        "Server Error: scripted failure"}


def test_a_forgotten_person_who_reappears_is_nobody(make_project: Writer,
                                                    receiver: Receiver) -> None:
    root = make_project(with_destinations(PLAYBOOKS, receiver.url))
    act_on(root)
    with Project(root).store() as store, store.backend.transaction():
        salt = store_salt(store, create=True)
        assert salt is not None
        forget_contact(store, "c2", subject_hash(salt, "c2"))
        write_tombstone(store, subject_hash(salt, "c2"), "contact", datetime(2026, 1, 17),
                        {})
    # c2 is still in contacts.csv: the sources were not cleaned.
    Project(root).run(datetime(2026, 1, 18))
    report = act_on(root)
    fresh = [i for i in report.plan.items if i.occurrence == datetime(2026, 1, 18)]
    assert {i.outcome for i in fresh} == {"no_recipient"}
    assert all(i.contact_id is None for i in fresh)


def test_an_error_that_quotes_the_person_is_scrubbed_too(make_project: Writer,
                                                         receiver: Receiver) -> None:
    """A receiver refusing a message quotes it back, address and all: the refusal is kept
    in the ledger, the decision log and the act's record — and erasure takes it out of all
    three."""
    root = make_project(with_destinations(PLAYBOOKS, receiver.url))
    receiver.reject = {"a1"}
    assert not act_on(root).ok
    state = root / ".retainer" / "state.duckdb"
    assert duckdb_dump(state).count("c2@acme.example") >= 5
    project = Project(root)
    apply_erasure(project, plan_erasure(project, contact="c2"))
    dump = duckdb_dump(state)
    assert "c2@acme.example" not in dump and "'c2'" not in dump
    assert "invalid records" in dump                     # the refusal itself stays
