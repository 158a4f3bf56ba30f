"""A playbook removed from the rulebook leaves pending rows nobody would dispatch: the next
act retires them (a dry run only says so), `retainer actions --status retired` lists them,
and renaming a playbook back does not bring its retired actions back."""

from __future__ import annotations

from pathlib import Path

from retainer.playbooks import ledger
from retainer.project import Project
from tests.playbooks.conftest import Writer, act_on, ledger_rows
from tests.playbooks.test_cli import quick
from tests.sync.receiver import Receiver

HOOKED = """
destinations:
  crm: {{type: webhook, url: "{url}", retries: 0, backoff: 0, timeout: 5}}
playbooks:
  welcome:
    purpose: operations
    when: "tenure_days >= 0"
    actions:
      - webhook: {{to: crm, event: account_welcome}}
  keep:
    purpose: operations
    when: "tenure_days >= 0"
    actions:
      - webhook: {{to: crm, event: kept}}
"""
WITHOUT_WELCOME_HOOK = """
destinations:
  crm: {{type: webhook, url: "{url}", retries: 0, backoff: 0, timeout: 5}}
playbooks:
  keep:
    purpose: operations
    when: "tenure_days >= 0"
    actions:
      - webhook: {{to: crm, event: kept}}
"""
ROUTED = """
playbooks:
  {name}:
    purpose: operations
    when: "tenure_days >= 0"
    actions:
      - route: {{queue: onboarding}}
"""
WHY = "tenure_days = {days}"


def playbooks_file(root: Path) -> Path:
    return root / "rulebook" / "playbooks.yml"


def planned_but_not_dispatched(root: Path) -> None:
    """What an act killed between writing its plan and dispatching it leaves behind."""
    plan = act_on(root, dry_run=True).plan
    with Project(root).store() as store:
        act_id = ledger.begin_act(store, plan.as_of, plan.run_id, plan.planned_at,
                                  plan.playbooks, "killed")
        ledger.insert(store, plan.to_record(), act_id, plan.as_of, plan.planned_at, "killed")


def statuses(root: Path) -> list[tuple[str, str, str]]:
    return [(r["playbook"], r["entity_id"], r["status"]) for r in ledger_rows(root)]


def test_failed_actions_of_a_removed_playbook_are_retired_not_sent(
        make_project: Writer, receiver: Receiver) -> None:
    root = make_project(HOOKED.format(url=receiver.url))
    receiver.script = [500]                 # one request: both playbooks' stream
    assert act_on(root).dispatched.total("failed") == 6
    playbooks_file(root).write_text(WITHOUT_WELCOME_HOOK.format(url=receiver.url))

    dry = act_on(root, dry_run=True)
    assert dry.retired == {"welcome": 3}
    assert statuses(root) == [("keep", a, "failed") for a in ("a1", "a2", "a3")] + [
        ("welcome", a, "failed") for a in ("a1", "a2", "a3")]

    report = act_on(root)
    assert report.ok and report.retired == {"welcome": 3} and report.retried == 3
    assert statuses(root) == [("keep", a, "sent") for a in ("a1", "a2", "a3")] + [
        ("welcome", a, "retired") for a in ("a1", "a2", "a3")]
    assert [r["payload"]["event"] for r in receiver.records()] == ["kept"] * 3
    retired = ledger_rows(root, "status = 'retired'")
    assert [r["reason"] for r in retired] == [
        f"playbook 'welcome' is no longer in the rulebook ({WHY.format(days=days)})"
        for days in (15, 15, 4)]
    # What the destination said stays with the row; the attempt count too.
    assert {(r["attempts"], r["error"]) for r in retired} == {
        (1, f"destination 'crm' failed after 1 attempt(s): {receiver.url} answered 500 "
            "Internal Server Error: scripted failure")}

    again = act_on(root)
    assert again.retired == {} and again.retried == 0
    assert len(ledger_rows(root, "status = 'retired'")) == 3
    # The acts table counts what each act retired (a dry run is no act).
    assert act_counts(root) == [(1, "failed", 0, 6, 0), (2, "succeeded", 3, 0, 3),
                                (3, "succeeded", 0, 0, 0)]


def act_counts(root: Path) -> list[tuple[int, str, int, int, int]]:
    """(act, status, sent, failed, retired) of every act."""
    with Project(root).store() as store:
        return [(int(a), str(s), int(n), int(f), int(r)) for a, s, n, f, r in
                store.backend.fetch("SELECT act_id, status, sent, failed, retired FROM acts "
                                    "ORDER BY act_id")]


def test_a_renamed_playbook_retires_the_old_name_and_renaming_back_resurrects_nothing(
        make_project: Writer) -> None:
    root = make_project(ROUTED.format(name="onboard"))
    planned_but_not_dispatched(root)
    assert statuses(root) == [("onboard", a, "planned") for a in ("a1", "a2", "a3")]

    # Renamed: the old name's rows are retired; the new name is a new playbook, so its
    # occurrences (the same as_of day) are new to the ledger and act.
    playbooks_file(root).write_text(ROUTED.format(name="onboarding"))
    renamed = act_on(root)
    assert renamed.retired == {"onboard": 3}
    assert renamed.dispatched.total("recorded") == 3
    assert statuses(root) == [("onboard", a, "retired") for a in ("a1", "a2", "a3")] + [
        ("onboarding", a, "recorded") for a in ("a1", "a2", "a3")]

    # Renamed back: the retired rows hold the same idempotency keys, so their occurrences
    # are done before — nothing is planned again, nothing retired comes back.
    playbooks_file(root).write_text(ROUTED.format(name="onboard"))
    back = act_on(root)
    assert back.written == 0 and back.retired == {}
    assert back.plan.counts()["onboard"]["done"] == 3
    assert back.plan.counts()["onboard"]["fire"] == 0
    assert statuses(root) == [("onboard", a, "retired") for a in ("a1", "a2", "a3")] + [
        ("onboarding", a, "recorded") for a in ("a1", "a2", "a3")]


def test_retired_rows_in_the_act_summary_and_the_ledger_listing(make_project: Writer) -> None:
    root = make_project(ROUTED.format(name="onboard") + ROUTED.format(name="other")
                        .replace("playbooks:\n", ""))
    planned_but_not_dispatched(root)
    playbooks_file(root).write_text(ROUTED.format(name="other"))
    before = statuses(root)

    dry = quick("act", "--dry-run", "-p", root)
    assert "would retire 3 pending action(s) of 'onboard', no longer in the rulebook" in dry
    assert statuses(root) == before
    dry_json = quick("act", "--dry-run", "--format", "json", "-p", root)
    assert '"retired": {\n    "onboard": 3\n  }' in dry_json

    done = " ".join(quick("act", "-p", root).split())   # as read, whatever the wrapping
    assert "— 0 new ledger row(s), 3 pending from earlier acts, 3 retired" in done
    assert "retired 3 pending action(s) of 'onboard', no longer in the rulebook" in done
    assert "'retainer actions --status retired' lists them" in done

    listed = quick("actions", "--status", "retired", "--format", "csv", "-p", root)
    lines = listed.strip().splitlines()
    assert len(lines) == 4 and all(",onboard," in line and ",retired," in line
                                   for line in lines[1:])
    wrong = quick("actions", "--status", "retird", "-p", root, code=1)
    assert "unknown status 'retird'" in wrong and "did you mean 'retired'?" in wrong
