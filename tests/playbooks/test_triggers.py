"""Trigger occurrences come from the membership history of real runs."""

from __future__ import annotations

from datetime import datetime, timedelta

from retainer.playbooks.occurrences import occurrences
from retainer.project import Project
from retainer.rulebook.playbook_models import Trigger
from tests.playbooks.conftest import DAYS, Writer, act_on, run

NOTHING = """
playbooks:
  noop: {purpose: operations, on: {enter: stage.fresh}, actions: [{route: {queue: q}}]}
"""


def found(root: object, trigger: dict[str, object], as_of: datetime) -> list[tuple[str, str]]:
    with Project(root).store() as store:  # type: ignore[arg-type]
        return [(o.entity_id, f"{o.at:%Y-%m-%d}") for o in occurrences(
            store, Trigger.model_validate(trigger), "account", as_of)]


def test_enter_skips_the_baseline_and_respects_within(make_project: Writer) -> None:
    root = make_project(NOTHING, runs=("baseline", "second", "third"))
    second, third = DAYS["second"], DAYS["third"]
    # a1 and a2 were fresh at the first run in history: found there, not entered.
    assert found(root, {"enter": "stage.fresh"}, DAYS["baseline"]) == []
    # a3 arrived and entered `fresh` at the second run; by the third it has left it.
    assert found(root, {"enter": "stage.fresh"}, second) == [("a3", "2026-01-16")]
    assert found(root, {"enter": "stage.quiet"}, second) == [("a2", "2026-01-16")]
    assert found(root, {"enter": "stage.quiet"}, third) == [("a1", "2026-02-20"),
                                                             ("a3", "2026-02-20")]
    # a2 entered quiet on 01-16: 35 days before the third run, outside `within`.
    late = found(root, {"enter": "stage.quiet", "within": "40d"}, third)
    assert ("a2", "2026-01-16") in late
    # A tag is entered like a segment.
    assert found(root, {"enter": "busy"}, second) == [("a1", "2026-01-16")]


def test_exit_needs_the_entity_gone(make_project: Writer) -> None:
    root = make_project(NOTHING, runs=("baseline", "second", "third"))
    assert found(root, {"exit": "stage.fresh"}, DAYS["second"]) == [
        ("a1", "2026-01-16"), ("a2", "2026-01-16")]
    assert found(root, {"exit": "stage.fresh"}, DAYS["third"]) == [("a3", "2026-02-20")]
    assert found(root, {"exit": "busy"}, DAYS["third"]) == [("a1", "2026-02-20")]
    # Acting a week later still sees the exit; a month later it is past `within`.
    assert found(root, {"exit": "busy"}, DAYS["third"] + timedelta(days=6)) != []
    assert found(root, {"exit": "busy"}, DAYS["third"] + timedelta(days=8)) == []


def test_in_counts_days_and_repeats_every(make_project: Writer) -> None:
    root = make_project(NOTHING, runs=("baseline", "second", "third"))
    third = DAYS["third"]
    assert found(root, {"in": "stage.quiet"}, third) == [
        ("a2", "2026-01-16"), ("a1", "2026-02-20"), ("a3", "2026-02-20")]
    # a2 has been quiet since 01-16: 35 days on 02-20.
    assert found(root, {"in": "stage.quiet", "days": 30}, third) == [("a2", "2026-02-15")]
    assert found(root, {"in": "stage.quiet", "days": 36}, third) == []
    # Every 2 days after day 30: due 02-15, 02-17, 02-19 — the latest reached counts once.
    assert found(root, {"in": "stage.quiet", "days": 30, "every": "2d"}, third) == [
        ("a2", "2026-02-19")]


def test_playbooks_act_on_the_latest_published_run(make_project: Writer) -> None:
    root = make_project(NOTHING, runs=("baseline",))
    assert act_on(root, dry_run=True).plan.as_of == DAYS["baseline"]
    run(root, "second")
    report = act_on(root, dry_run=True)
    assert report.plan.as_of == DAYS["second"] and report.plan.run_id == 2
    assert [(i.entity_id, i.outcome) for i in report.plan.items] == [("a3", "fire")]
