"""Uplift counts a retired action as treated: a playbook whose failed actions were retired
while it was out of the rulebook, then put back, is measured with those entities in the
treated arm, as they were before it left (intention to treat)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from retainer.measure.uplift import uplifts
from retainer.playbooks.keys import is_held_out
from retainer.project import Project
from tests.playbooks.conftest import Writer, act_on, ledger_rows, make_project, receiver
from tests.playbooks.test_uplift import ACCOUNTS, ACTIVE, DATA
from tests.sync.receiver import Receiver

__all__ = ["make_project", "receiver"]  # fixtures of the playbook tests

ONBOARDING = """
  onboarding:
    purpose: success_outreach
    on: {{exit: stage.fresh}}
    holdout: 50%
    outcome: {{in: [stage.active], after: 1d}}
    actions:
      - webhook: {{to: crm, event: onboard}}
"""
PLAYBOOKS = """
destinations:
  crm: {{type: webhook, url: "{url}", retries: 0, backoff: 0, timeout: 5}}
playbooks:{onboarding}
  other:
    purpose: operations
    on: {{exit: stage.fresh}}
    actions: [{{route: {{queue: q}}}}]
"""


def write_playbooks(root: Path, url: str, onboarding: bool) -> None:
    (root / "rulebook" / "playbooks.yml").write_text(PLAYBOOKS.format(
        url=url, onboarding=ONBOARDING.format() if onboarding else ""))


def arms(root: Path) -> tuple[tuple[int, int], tuple[int, int]]:
    """(accounts, successes) of the treated arm and of the holdout."""
    [result] = uplifts(Project(root).rulebook)
    assert result.playbook == "onboarding"
    return ((result.treated.accounts, result.treated.successes),
            (result.holdout.accounts, result.holdout.successes))


def test_retired_actions_count_in_the_treated_arm(make_project: Writer,
                                                 receiver: Receiver) -> None:
    root = make_project(PLAYBOOKS.format(url=receiver.url, onboarding=ONBOARDING.format()),
                        data=DATA)
    held = {a for a in ACCOUNTS if is_held_out(0.5, "acts", "onboarding", a)}
    treated = set(ACCOUNTS) - held
    receiver.script = [500]            # the one batch of onboarding webhooks fails
    assert act_on(root).dispatched.total("failed") == len(treated)
    Project(root).run(datetime(2026, 1, 20))
    expected = ((len(treated), len(treated & ACTIVE)), (len(held), len(held & ACTIVE)))
    assert arms(root) == expected     # failed and waiting for a retry: treated

    write_playbooks(root, receiver.url, onboarding=False)
    assert act_on(root).retired == {"onboarding": len(treated)}
    write_playbooks(root, receiver.url, onboarding=True)
    rows = ledger_rows(root, "playbook = 'onboarding'")
    assert {(r["status"], r["attempts"]) for r in rows if not r["holdout"]} == {("retired", 1)}
    assert {r["status"] for r in rows if r["holdout"]} == {"held_out"}
    # Back in the rulebook, measured as before it left: retiring moved nobody.
    assert arms(root) == expected
