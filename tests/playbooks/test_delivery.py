"""Actions delivered to a real webhook receiver on loopback: payloads, failures that are
retried by the next act without duplicating anything, refusals, and giving up."""

from __future__ import annotations

import signal
import subprocess
import time

from retainer.project import Project
from tests.playbooks.conftest import Writer, act_on, decision_rows, ledger_rows
from tests.playbooks.test_cli import RETAINER
from tests.sync.receiver import Receiver, free_port

# a2 and a3 have no executive: their message is recorded as such once, never delivered.
DELIVERABLE = "status <> 'no_recipient'"


def hooks(receiver: Receiver, max_attempts: int = 5) -> tuple[str, str]:
    project = f"""
name: acts
output: {{include: [name, owner]}}
act: {{max_attempts: {max_attempts}}}
sources:
  accounts: {{kind: accounts, from: data/accounts.csv, key: account_id, time: created_at}}
  contacts: {{kind: contacts, from: data/contacts.csv, key: contact_id, account: account_id, role: role, email: email}}
  events: {{from: data/events.csv, account: account_id, time: ts}}
  consents: {{kind: consents, from: data/consents.csv, contact: contact_id, time: recorded_at}}
"""
    playbooks = f"""
destinations:
  crm: {{type: webhook, url: "{receiver.url}", retries: 0, backoff: 0, timeout: 5}}
consent: {{jurisdiction: country}}
playbooks:
  welcome:
    purpose: operations
    when: "tenure_days >= 0"
    actions:
      - webhook: {{to: crm, event: account_welcome, fields: [name, stage, tenure_days]}}
      - message: {{to: crm, template: welcome, roles: [executive], stream: emails}}
"""
    return project, playbooks


def test_webhook_and_message_payloads(make_project: Writer, receiver: Receiver) -> None:
    project, playbooks = hooks(receiver)
    root = make_project(playbooks, project=project)
    report = act_on(root)
    assert report.ok
    by_stream: dict[str, list[dict[str, object]]] = {}
    for request in receiver.stored:
        by_stream.setdefault(str(request.body["stream"]), []).extend(request.body["records"])
    events = {r["entity_id"]: r["payload"] for r in by_stream["actions"]}
    assert sorted(events) == ["a1", "a2", "a3"]
    assert events["a3"]["event"] == "account_welcome"
    assert events["a3"]["fields"] == {"name": "Initech", "stage": "fresh", "tenure_days": 4}
    assert events["a3"]["trigger"] == "when" and events["a3"]["playbook"] == "welcome"
    # Only a1 has an executive (c2, in the US: opt-out, no objection).
    [email] = by_stream["emails"]
    assert email["entity_id"] == "a1"
    assert email["payload"]["contact"] == {"id": "c2", "role": "executive",
                                           "email": "c2@acme.example"}
    assert {r["status"] for r in ledger_rows(root, DELIVERABLE)} == {"sent"}
    missing = ledger_rows(root, "status = 'no_recipient'")
    assert [r["entity_id"] for r in missing] == ["a2", "a3"]
    assert all(r["reason"].startswith("no contact (executive) to send to") for r in missing)
    keys = {r["action_key"] for r in ledger_rows(root, DELIVERABLE)}
    assert {r["key"] for r in receiver.records()} == keys


def test_a_failed_delivery_is_retried_by_the_next_act_exactly_once(
        make_project: Writer, receiver: Receiver) -> None:
    project, playbooks = hooks(receiver)
    root = make_project(playbooks, project=project)
    receiver.script = [500, 500]            # both streams fail at the first act
    first = act_on(root)
    assert not first.ok
    assert first.dispatched.total("failed") == 4
    assert any("answered 500" in f and "will retry" in f for f in first.dispatched.failures)
    rows = ledger_rows(root, DELIVERABLE)
    assert {(r["status"], r["attempts"]) for r in rows} == {("failed", 1)}
    assert receiver.stored == []
    failed = [d for d in decision_rows(root) if d["outcome"] == "failed"]
    assert [d["contact_id"] for d in failed] == ["c2"]
    assert "delivery failed" in failed[0]["reason"]

    # Before the retry the executive's address changes: the retry goes to the new one.
    contacts = root / "data" / "contacts.csv"
    contacts.write_text(contacts.read_text().replace("c2@acme.example", "c2@new.example"))
    second = act_on(root)                   # nothing new to plan; the four are retried
    assert second.ok and second.written == 0 and second.retried == 4
    assert {(r["status"], r["attempts"]) for r in ledger_rows(root, DELIVERABLE)} == {
        ("sent", 2)}
    delivered = receiver.records()
    assert len(delivered) == 4 and len({r["key"] for r in delivered}) == 4
    [email] = [r for r in delivered if "contact" in r["payload"]]
    assert email["payload"]["contact"] == {"id": "c2", "role": "executive",
                                           "email": "c2@new.example"}
    third = act_on(root)
    assert third.retried == 0 and len(receiver.records()) == 4


def test_a_receiver_that_is_down_then_up(make_project: Writer, receiver: Receiver) -> None:
    down = Receiver(url=f"http://127.0.0.1:{free_port()}/hook")   # nothing listens there
    project, playbooks = hooks(down)
    root = make_project(playbooks, project=project)
    report = act_on(root)
    assert not report.ok and "cannot reach" in report.dispatched.failures[0]
    assert {r["status"] for r in ledger_rows(root, DELIVERABLE)} == {"failed"}
    # The destination comes back (at another address): the next act delivers everything.
    playbook_file = root / "rulebook" / "playbooks.yml"
    playbook_file.write_text(playbook_file.read_text().replace(down.url, receiver.url))
    again = act_on(root)
    assert again.ok and again.retried == 4
    assert {(r["status"], r["attempts"]) for r in ledger_rows(root, DELIVERABLE)} == {
        ("sent", 2)}
    assert len(receiver.records()) == 4


def test_a_refusal_is_not_retried_and_attempts_run_out(make_project: Writer,
                                                       receiver: Receiver) -> None:
    project, playbooks = hooks(receiver, max_attempts=2)
    root = make_project(playbooks, project=project)
    receiver.script = [422, 503]            # events refused; the email fails
    report = act_on(root)
    rows = {r["action_kind"]: r for r in ledger_rows(root, DELIVERABLE)}
    assert rows["webhook"]["status"] == "rejected"
    assert "refused the request" in rows["webhook"]["error"]
    assert rows["message"]["status"] == "failed"
    assert any("not retried" in f for f in report.dispatched.failures)
    receiver.script = [503]
    act_on(root)                            # the second and last attempt for the email
    rows = {r["action_kind"]: r for r in ledger_rows(root, DELIVERABLE)}
    assert rows["message"]["status"] == "rejected"
    assert rows["message"]["error"].startswith("gave up after 2 attempts")
    assert act_on(root).retried == 0


def test_an_act_killed_mid_delivery_is_finished_by_the_next(make_project: Writer,
                                                           receiver: Receiver) -> None:
    project, playbooks = hooks(receiver)
    root = make_project(playbooks, project=project)
    receiver.script = ["hang"]             # the first request hangs
    process = subprocess.Popen([RETAINER, "act", "-p", str(root)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not receiver.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        assert receiver.requests, "the act never reached the receiver"
        process.send_signal(signal.SIGKILL)  # killed while the destination is answering
        process.wait(30)
    finally:
        receiver.release()
        if process.poll() is None:
            process.kill()
    rows = ledger_rows(root, DELIVERABLE)
    assert len(rows) == 4 and {r["status"] for r in rows} == {"planned"}
    assert receiver.stored == []
    finished = act_on(root)
    assert finished.ok and finished.written == 0 and finished.retried == 4
    assert {r["status"] for r in ledger_rows(root, DELIVERABLE)} == {"sent"}
    assert sorted(r["key"] for r in receiver.records()) == sorted(r["action_key"]
                                                                   for r in rows)
    with Project(root).store() as store:
        acts = store.backend.fetch("SELECT act_id, status FROM acts ORDER BY act_id")
    assert acts == [(1, "interrupted"), (2, "succeeded")]
