"""Uplift against the holdout, from the ledger and membership history of real runs."""

from __future__ import annotations

from datetime import datetime

from retainer.measure.uplift import uplifts
from retainer.playbooks.keys import is_held_out
from retainer.project import Project
from tests.playbooks.conftest import Writer, act_on

ACCOUNTS = [f"a{n:02d}" for n in range(40)]
ACTIVE = set(ACCOUNTS[::3])          # these log in on 01-15 and are `active` after
DATA = {
    "accounts.csv": "account_id,name,owner,created_at\n" + "".join(
        f"{a},Account {a},owner@us.example,2026-01-01\n" for a in ACCOUNTS),
    "contacts.csv": "contact_id,account_id,role,email,country\n",
    "events.csv": "account_id,ts,name\n" + "".join(
        f"{a},2026-01-15 10:00:00,login\n" for a in sorted(ACTIVE)),
}
PLAYBOOKS = """
playbooks:
  onboarding:
    purpose: success_outreach
    on: {exit: stage.fresh}
    holdout: 50%
    outcome: {in: [stage.active], after: 1d}
    actions: [{task: {owner: owner, title: "Onboard {name}"}}]
  unmeasured:
    purpose: success_outreach
    on: {exit: stage.fresh}
    holdout: 50%
    actions: [{route: {queue: q}}]
"""


def test_uplift_compares_the_arms_at_occurrence_plus_after(make_project: Writer) -> None:
    root = make_project(PLAYBOOKS, runs=("baseline", "second"), data=DATA)
    act_on(root)
    rulebook = Project(root).rulebook
    # Every account left `fresh` on 01-16; its outcome is due on 01-17, after the latest
    # run: nothing can be measured yet.
    assert uplifts(rulebook) == []
    Project(root).run(datetime(2026, 1, 20))
    [result] = uplifts(rulebook)
    held = {a for a in ACCOUNTS if is_held_out(0.5, "acts", "onboarding", a)}
    treated = set(ACCOUNTS) - held
    assert result.playbook == "onboarding"
    assert result.outcome == "in stage.active, after 1d"
    assert (result.treated.accounts, result.treated.successes) == (
        len(treated), len(treated & ACTIVE))
    assert (result.holdout.accounts, result.holdout.successes) == (
        len(held), len(held & ACTIVE))
    expected = len(treated & ACTIVE) / len(treated) - len(held & ACTIVE) / len(held)
    assert result.difference.value is not None
    assert abs(result.difference.value - expected) < 1e-12
    assert result.difference.low is not None and result.difference.low < expected
    assert result.small  # fewer than 30 in an arm
