"""History rebuilt with `backfill --replace` at another cadence moves when stays and
absences began, and with them the trigger occurrences: what was acted on before does not
fire again, what is genuinely new still does."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import pytest

from retainer.playbooks import ledger, plan
from retainer.playbooks.act import ActReport
from retainer.playbooks.occurrences import Occurrence, same_state
from retainer.project import Project
from retainer.rulebook.playbook_models import Trigger
from tests.playbooks.conftest import (
    DAYS,
    PROJECT,
    Writer,
    act_on,
    with_destinations,
)
from tests.sync.receiver import Receiver

PLAYBOOKS = """
playbooks:
  welcome:
    purpose: operations
    on: {enter: stage.quiet, within: 30d}
    actions: [{route: {queue: welcome, to: hook}}]
  graduated:
    purpose: operations
    on: {exit: stage.fresh, within: 30d}
    actions: [{route: {queue: graduates, to: hook}}]
  check_in:
    purpose: operations
    on: {in: stage.quiet, days: 3}
    actions: [{route: {queue: check, to: hook}}]
  weekly:
    purpose: operations
    on: {in: stage.quiet, every: 7d}
    actions: [{route: {queue: weekly, to: hook}}]
"""
WEEKLY = [datetime(2026, 1, 5) + timedelta(days=7 * n) for n in range(4)]  # 01-05 … 01-26


def sent(receiver: Receiver) -> list[tuple[str, str, str]]:
    """(playbook, account, occurrence day) of every action the hook received."""
    return sorted((r["payload"]["playbook"], r["payload"]["account_id"],
                   r["payload"]["occurrence"][:10]) for r in receiver.records())


def outcomes(report: ActReport) -> list[tuple[str, str, str, str]]:
    return sorted((i.playbook, i.entity_id, f"{i.occurrence:%m-%d}", i.outcome)
                  for i in report.plan.items)


@pytest.mark.parametrize("store", ["duckdb", "postgres"])
def test_a_rebuild_at_another_cadence_acts_once_per_entry(
        make_project: Writer, receiver: Receiver, request: pytest.FixtureRequest,
        store: str) -> None:
    project = PROJECT
    if store == "postgres":
        url = request.getfixturevalue("postgres_url")
        project = PROJECT.replace("name: acts\n", f"name: acts\nstate: \"{url}\"\n")
    root = make_project(with_destinations(PLAYBOOKS, receiver.url), runs=(),
                        project=project)
    # Weekly runs, each acted on: a1 and a2 turn quiet on 01-12 (a1 leaves for `active`
    # on 01-19), a3 arrives fresh on 01-12 and turns quiet on 01-26.
    for day in WEEKLY:
        Project(root).run(day)
        assert act_on(root).ok
    before = sent(receiver)
    assert before == [
        ("check_in", "a2", "2026-01-15"),
        ("graduated", "a1", "2026-01-12"), ("graduated", "a2", "2026-01-12"),
        ("graduated", "a3", "2026-01-26"),
        ("weekly", "a1", "2026-01-12"), ("weekly", "a2", "2026-01-12"),
        ("weekly", "a2", "2026-01-19"), ("weekly", "a2", "2026-01-26"),
        ("weekly", "a3", "2026-01-26"),
        ("welcome", "a1", "2026-01-12"), ("welcome", "a2", "2026-01-12"),
        ("welcome", "a3", "2026-01-26")]

    # Rebuilt every 5 days: the same stays now begin on 01-15 (a1, a2) and 01-25 (a3).
    report = Project(root).backfill(datetime(2026, 1, 5), datetime(2026, 1, 30),
                                    timedelta(days=5), replace_history=True)
    assert report.undone == 4
    rebuilt = act_on(root)
    assert rebuilt.ok
    assert outcomes(rebuilt) == [
        ("check_in", "a2", "01-18", plan.STOPPED),
        # a3's stay reached 3 days on 01-28: under the weekly history it never had.
        ("check_in", "a3", "01-28", plan.FIRE),
        ("graduated", "a1", "01-15", plan.STOPPED), ("graduated", "a2", "01-15", plan.STOPPED),
        ("graduated", "a3", "01-25", plan.STOPPED),
        # a2's third week (01-29) is the one acted on as 01-26; a3's first is 01-25's.
        ("weekly", "a2", "01-29", plan.STOPPED), ("weekly", "a3", "01-25", plan.STOPPED),
        ("welcome", "a2", "01-15", plan.STOPPED), ("welcome", "a3", "01-25", plan.STOPPED)]
    assert sent(receiver) == sorted([*before, ("check_in", "a3", "2026-01-28")])
    # The skips are recorded, each naming the action that handled its entry.
    with Project(root).store() as opened:
        rows = ledger.entries(opened)
    keys = {(e.playbook, e.entity_id, f"{e.occurrence:%m-%d}"): e.action_key
            for e in rows if e.status == "sent"}
    stopped = {(e.playbook, e.entity_id): e.reason for e in rows if e.status == "stopped"}
    assert stopped[("welcome", "a2")] == (
        "already acted on this entry before history was rebuilt: action "
        f"{keys[('welcome', 'a2', '01-12')]} (entered stage.quiet 2026-01-15)")
    assert stopped[("graduated", "a3")] == (
        "already acted on this exit before history was rebuilt: action "
        f"{keys[('graduated', 'a3', '01-26')]} (left stage.fresh 2026-01-25)")
    assert stopped[("weekly", "a2")].startswith(
        "already acted on this stay before history was rebuilt: action "
        f"{keys[('weekly', 'a2', '01-26')]} ")
    assert len(stopped) == 8

    # Acting again changes nothing: the skips are in the ledger as they are now.
    again = act_on(root)
    assert again.written == 0 and len(receiver.records()) == len(before) + 1
    assert Counter(i.outcome for i in again.plan.items) == {plan.DONE: 9}

    # 02-20: a1 is quiet again — a new stay, after the one acted on on 01-12 — and a2's
    # and a3's stays reach new weeks (01-15 + 35 days, 01-25 + 21 days).
    Project(root).run(DAYS["third"])
    later = act_on(root)
    assert later.ok
    assert [(i.playbook, i.entity_id, f"{i.occurrence:%m-%d}") for i in later.plan.firing()
            ] == [("welcome", "a1", "02-20"), ("weekly", "a3", "02-15"),
                  ("weekly", "a2", "02-19"), ("weekly", "a1", "02-20")]
    assert len(receiver.records()) == len(before) + 1 + 4

    # Rebuilt once more, at yet another cadence: every skip names an action that was sent,
    # never the row an earlier rebuild stopped.
    Project(root).backfill(datetime(2026, 1, 6), DAYS["third"], timedelta(days=4),
                           replace_history=True)
    assert act_on(root).ok
    with Project(root).store() as opened:
        rows = ledger.entries(opened, limit=1000)
    sent_keys = {e.action_key for e in rows if e.status == "sent"}
    named = [e.reason.split("action ")[1].split(" ")[0] for e in rows
             if e.status == "stopped" and e.reason and "history was rebuilt" in e.reason]
    assert len(named) > 8 and set(named) <= sent_keys


def test_ordinary_history_keeps_every_new_entry(make_project: Writer,
                                                receiver: Receiver) -> None:
    """Without a rebuild nothing changes: a1's entry after an exit is a new one, though the
    stay before it was acted on — also when a re-run at the same as_of superseded the run
    that act was on."""
    root = make_project(with_destinations(PLAYBOOKS, receiver.url), runs=())
    for day in WEEKLY[:2]:
        Project(root).run(day)
        assert act_on(root).ok
    Project(root).run(WEEKLY[1])            # 01-12 again: the run acted on is superseded
    for day in (WEEKLY[2], DAYS["third"]):  # a1 active on 01-19, quiet again on 02-20
        Project(root).run(day)
    later = act_on(root)
    assert sorted((i.playbook, i.entity_id, f"{i.occurrence:%m-%d}", i.outcome)
                  for i in later.plan.items if i.entity_id == "a1") == [
        ("weekly", "a1", "02-20", plan.FIRE), ("welcome", "a1", "02-20", plan.FIRE)]
    assert ("welcome", "a1", "2026-01-12") in sent(receiver)


def test_an_old_occurrence_counts_only_within_the_gap_the_runs_leave() -> None:
    """The rule itself: runs every 5 days (01-05 … 01-30) pin a stay that began on 01-15 to
    after 01-10; an occurrence acted on at or before 01-10 belongs to an earlier stay."""
    times = [datetime(2026, 1, 5) + timedelta(days=5 * n) for n in range(6)]

    def same(trigger: dict[str, object], at: int, began: int, earlier: int) -> bool:
        """Whether an occurrence acted on on January `earlier` handled the one on January
        `at` of a state that began on January `began`."""
        parsed = Trigger.model_validate(trigger)
        occurrence = Occurrence("a1", parsed.kind, parsed.segment, datetime(2026, 1, at),
                                "", datetime(2026, 1, began))
        return same_state(occurrence, parsed, datetime(2026, 1, earlier), times)

    enter = {"enter": "stage.quiet"}
    assert same(enter, 15, 15, 12) and same(enter, 15, 15, 17) and same(enter, 15, 15, 11)
    assert not same(enter, 15, 15, 10) and not same(enter, 15, 15, 5)
    exit_ = {"exit": "stage.fresh"}
    assert same(exit_, 25, 25, 26) and not same(exit_, 25, 25, 20)
    # `every`: the period whose moment is nearest, half a period either side of it.
    weekly = {"in": "stage.quiet", "every": "7d"}
    assert same(weekly, 29, 15, 26) and same(weekly, 29, 15, 31)
    assert not same(weekly, 29, 15, 19) and not same(weekly, 29, 15, 25)
    # A stay that began at the first run in history has no run before it.
    assert same({"in": "stage.quiet", "days": 3}, 8, 5, 1)
