"""`act` end to end on real runs: what fires and why not, idempotency, holdouts, cooldowns,
caps and stops, all read back from the ledger in the state store."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import pytest

from retainer.errors import RetainerError, ValidationError
from retainer.playbooks.keys import is_held_out
from retainer.project import Project
from tests.playbooks.conftest import PROJECT, Writer, act_on, ledger_rows, run, with_destinations

TASKS = """
playbooks:
  welcome:
    purpose: success_outreach
    on: {enter: stage.fresh}
    actions:
      - task: {owner: owner, title: "Welcome call: {name} ({tenure_days} days)", due: 2d,
               note: "stage {stage}"}
      - route: {queue: onboarding}
"""


def test_a_task_is_planned_recorded_and_never_repeated(make_project: Writer) -> None:
    root = make_project(TASKS)
    dry = act_on(root, dry_run=True)
    assert ledger_rows(root) == [], "a dry run writes nothing"
    fired = [i for i in dry.plan.items if i.outcome == "fire"]
    assert [(i.entity_id, i.action_kind) for i in fired] == [("a3", "task"), ("a3", "route")]
    task = fired[0]
    assert task.payload["title"] == "Welcome call: Initech (4 days)"
    assert task.payload["owner"] == "ana@us.example"
    assert task.payload["note"] == "stage fresh"
    assert task.payload["due_at"] == "2026-01-18T00:00:00"
    assert task.why == "entered stage.fresh 2026-01-16"

    first = act_on(root)
    assert first.written == 2 and first.ok
    rows = ledger_rows(root)
    assert [(r["entity_id"], r["action_kind"], r["status"]) for r in rows] == [
        ("a3", "task", "recorded"), ("a3", "route", "recorded")]
    assert rows[0]["due_at"].isoformat() == "2026-01-18T00:00:00"
    # Again at the same as_of: the occurrence is in the ledger, nothing new.
    again = act_on(root)
    assert again.written == 0
    assert Counter(i.outcome for i in again.plan.items) == {"done": 2}
    # A later run with the same occurrence (a3 still entered on 01-16, within 7 days).
    Project(root).run(datetime(2026, 1, 19))
    assert act_on(root).written == 0
    assert len(ledger_rows(root)) == 2
    with Project(root).store() as store:
        acts = store.backend.fetch("SELECT act_id, status, planned, recorded FROM acts "
                                   "ORDER BY act_id")
    assert acts == [(1, "succeeded", 2, 2), (2, "succeeded", 0, 0), (3, "succeeded", 0, 0)]


def test_when_filters_and_shows_its_values(make_project: Writer) -> None:
    root = make_project("""
playbooks:
  fresh_idle:
    purpose: success_outreach
    on: {exit: stage.fresh}
    when: "logins_30d = 0 and health_band is null or logins_30d = 0"
    actions: [{task: {owner: owner, title: "Nudge {name}"}}]
""".replace("health_band is null or ", ""))
    plan = act_on(root, dry_run=True).plan
    outcomes = {(i.entity_id, i.outcome) for i in plan.items}
    assert outcomes == {("a1", "no_match"), ("a2", "fire")}
    fired = next(i for i in plan.items if i.outcome == "fire")
    assert fired.why == "left stage.fresh 2026-01-16; logins_30d = 0"
    assert next(i for i in plan.items if i.entity_id == "a1").why_not.startswith(
        "when does not hold")


def test_holdout_rows_are_recorded_and_nothing_is_done(make_project: Writer) -> None:
    root = make_project("""
playbooks:
  nudge:
    purpose: success_outreach
    when: "tenure_days >= 0"
    actions: [{task: {owner: owner, title: "Nudge {name}"}}]
    holdout: 50%
""")
    report = act_on(root)
    rows = {r["entity_id"]: r for r in ledger_rows(root)}
    assert set(rows) == {"a1", "a2", "a3"}
    for entity, row in rows.items():
        held = is_held_out(0.5, "acts", "nudge", entity)
        assert row["holdout"] is held
        assert row["status"] == ("held_out" if held else "recorded")
        assert ("title" in row["payload"]) is not held
    assert report.plan.counts()["nudge"]["held_out"] == sum(
        is_held_out(0.5, "acts", "nudge", e) for e in rows)


def test_a_condition_playbook_fires_once_per_cooldown(make_project: Writer) -> None:
    root = make_project("""
playbooks:
  busy_check:
    purpose: success_outreach
    when: "busy"
    actions: [{task: {owner: owner, title: "Busy: {name}"}}]
  busy_daily:
    purpose: success_outreach
    when: "busy"
    cooldown: 1d
    actions: [{route: {queue: busy}}]
""")
    act_on(root)
    Project(root).run(datetime(2026, 1, 18))
    plan = act_on(root).plan
    by = {i.playbook: i for i in plan.items}
    assert by["busy_check"].outcome == "cooldown"
    assert by["busy_check"].why_not == "acted on 2026-01-16; cooldown 30d"
    assert by["busy_daily"].outcome == "fire"
    occurrences = sorted(str(r["occurrence"]) for r in ledger_rows(root, "playbook = "
                                                                         "'busy_daily'"))
    assert occurrences == ["2026-01-16 00:00:00", "2026-01-18 00:00:00"]


def test_caps_count_across_playbooks(make_project: Writer) -> None:
    project = PROJECT + "act: {caps: {account: {max: 1, per: 7d}}}\n"
    root = make_project("""
playbooks:
  first:
    purpose: success_outreach
    when: "tenure_days >= 0"
    actions: [{task: {owner: owner, title: "First {name}"}}]
  second:
    purpose: success_outreach
    when: "tenure_days >= 0"
    actions: [{task: {owner: owner, title: "Second {name}"}}]
  uncapped:
    purpose: success_outreach
    when: "tenure_days >= 0"
    caps: {account: {max: 5, per: 7d}}
    actions: [{task: {owner: owner, title: "Third {name}"}}]
""", project=project)
    plan = act_on(root).plan
    outcome = {(i.playbook, i.entity_id): i.outcome for i in plan.items}
    assert {k: v for k, v in outcome.items() if k[0] == "first"} == {
        ("first", e): "fire" for e in ("a1", "a2", "a3")}
    assert {v for k, v in outcome.items() if k[0] == "second"} == {"capped"}
    assert {v for k, v in outcome.items() if k[0] == "uncapped"} == {"fire"}
    capped = next(i for i in plan.items if i.playbook == "second")
    assert capped.why_not == "account a1 had 1 action(s) in the last 7d (cap 1)"
    # Capped items are not recorded: they are tried again at the next act.
    assert {r["playbook"] for r in ledger_rows(root)} == {"first", "uncapped"}


def test_a_playbook_stops_others_while_its_state_holds(make_project: Writer) -> None:
    root = make_project("""
playbooks:
  nurture:
    purpose: success_outreach
    when: "tenure_days >= 0"
    actions: [{route: {queue: nurture}}]
  quiet_review:
    purpose: success_outreach
    on: {enter: stage.quiet}
    stops: [nurture]
    actions: [{task: {owner: owner, title: "Review {name}"}}]
""")
    plan = act_on(root).plan
    nurture = {i.entity_id: i for i in plan.items if i.playbook == "nurture"}
    # a2 is quiet at the second run: its nurture is stopped, the others go on.
    assert nurture["a2"].outcome == "stopped"
    assert nurture["a2"].why_not == "stopped by quiet_review (stage.quiet)"
    assert {nurture["a1"].outcome, nurture["a3"].outcome} == {"fire"}
    rows = {(r["playbook"], r["entity_id"]): r["status"] for r in ledger_rows(root)}
    assert rows[("nurture", "a2")] == "stopped"
    assert rows[("quiet_review", "a2")] == "recorded"


def test_owner_role_and_missing_recipients(make_project: Writer) -> None:
    root = make_project("""
playbooks:
  exec_call:
    purpose: success_outreach
    when: "tenure_days >= 0"
    actions: [{task: {owner_role: executive, channel: phone, title: "Call {name}"}}]
""")
    plan = act_on(root, dry_run=True).plan
    by = {i.entity_id: i for i in plan.items}
    assert by["a1"].outcome == "fire" and by["a1"].contact_id == "c2"
    assert by["a1"].payload["owner"] == "c2@acme.example"
    assert by["a1"].payload["contact"] == {"id": "c2", "role": "executive",
                                           "email": "c2@acme.example"}
    assert by["a2"].outcome == "no_recipient"
    assert by["a2"].why_not == "no contact with role 'executive'"


def test_errors_are_for_people(make_project: Writer) -> None:
    root = make_project(TASKS, runs=())
    with pytest.raises(RetainerError, match="no published results"):
        act_on(root)
    run(root, "baseline")
    with pytest.raises(RetainerError, match="no playbook named 'welcom'") as caught:
        act_on(root, playbooks=["welcom"])
    assert "did you mean 'welcome'" in str(caught.value.problem.hint)
    broken = make_project(TASKS.replace("{name}", "{nmae}"), runs=("baseline",))
    with pytest.raises(ValidationError) as invalid:
        act_on(broken)
    assert "template field '{nmae}'" in str(invalid.value)
    assert ledger_rows(broken) == []


def test_a_capped_recipient_of_an_occurrence_that_went_ahead_is_recorded(
        make_project: Writer) -> None:
    """An occurrence acts once: when one contact is over the cap and another is not, the
    message goes to the other and the capped one is recorded (the ledger says why), not
    left to look like it will be tried again. A wholly capped occurrence is tried again."""
    root = make_project(with_destinations("""
playbooks:
  first:
    purpose: success_outreach
    when: "tenure_days >= 0"
    actions: [{message: {to: outbox, template: hello, roles: [practitioner]}}]
  all_hands:
    purpose: success_outreach
    when: "tenure_days >= 0"
    caps: {contact: {max: 1, per: 30d}}
    actions: [{message: {to: outbox, template: news}}]
"""))
    report = act_on(root)
    assert report.ok
    rows = {(r["playbook"], r["contact_id"]): r for r in ledger_rows(root)}
    # a1: c1 already had `first`, c2 had nothing; a2 and a3 have only their practitioner.
    assert rows[("all_hands", "c2")]["status"] == "sent"
    assert rows[("all_hands", "c1")]["status"] == "capped"
    assert rows[("all_hands", "c1")]["reason"].startswith(
        "contact c1 had 1 message(s) in the last 30d (cap 1)")
    assert ("all_hands", "c3") not in rows and ("all_hands", "c4") not in rows
    again = act_on(root, dry_run=True).plan
    outcome = {(i.entity_id, i.contact_id): i.outcome for i in again.items
               if i.playbook == "all_hands"}
    assert outcome[("a1", None)] == "done"
    assert outcome[("a2", "c3")] == "capped" and outcome[("a3", "c4")] == "capped"


def test_cooldowns_and_caps_end_exactly_when_their_period_does(make_project: Writer) -> None:
    """A 2-day cooldown or cap from an act on 01-16 holds on 01-17 23:59 and is over on
    01-18 00:00: a period `per` long ends at the same moment it began, `per` later."""
    root = make_project("""
playbooks:
  cooled:
    purpose: success_outreach
    when: "busy"
    cooldown: 2d
    actions: [{route: {queue: a}}]
  capped:
    purpose: success_outreach
    when: "not busy"
    cooldown: 1h
    caps: {account: {max: 1, per: 2d}}
    actions: [{route: {queue: b}}]
""")
    act_on(root)                               # a1 is busy on 01-16, a2 and a3 are not
    outcomes = {}
    for moment in (datetime(2026, 1, 17, 23, 59), datetime(2026, 1, 18)):
        Project(root).run(moment)
        plan = act_on(root, dry_run=True).plan
        outcomes[moment.day] = {(i.playbook, i.entity_id): i.outcome for i in plan.items
                                if i.entity_id in ("a1", "a2")}
    assert outcomes == {17: {("cooled", "a1"): "cooldown", ("capped", "a2"): "capped"},
                        18: {("cooled", "a1"): "fire", ("capped", "a2"): "fire"}}
