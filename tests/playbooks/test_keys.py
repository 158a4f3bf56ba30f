"""Holdout groups and idempotency keys are stable hashes: measured on 10,000 entities."""

from __future__ import annotations

from datetime import datetime

from retainer.playbooks.keys import action_key, holdout_draw, is_held_out

ENTITIES = [f"A{n:06d}" for n in range(10_000)]


def held(share: float, salt: str = "acme", playbook: str = "save_call") -> set[str]:
    return {e for e in ENTITIES if is_held_out(share, salt, playbook, e)}


def test_the_holdout_share_is_close_to_the_stated_one() -> None:
    for share in (0.05, 0.1, 0.25):
        found = len(held(share)) / len(ENTITIES)
        # binomial standard deviation at 10k: ≤ 0.0044; allow about three of them
        assert abs(found - share) < 0.013, (share, found)
    assert held(0.0) == set()


def test_the_assignment_is_stable_and_depends_on_salt_and_playbook() -> None:
    assert held(0.1) == held(0.1)
    assert held(0.1) <= held(0.2), "raising the share only adds entities"
    other_salt, other_playbook = held(0.1, salt="other"), held(0.1, playbook="other")
    assert len(held(0.1) & other_salt) < 200 and len(held(0.1) & other_playbook) < 200
    draws = [holdout_draw("acme", "p", e) for e in ENTITIES[:1000]]
    assert all(0 <= d < 1 for d in draws)
    # Known values: a new version must not move anyone between groups.
    assert round(holdout_draw("acme", "save_call", "A000001"), 9) == 0.418801941


def test_action_keys_identify_one_occurrence_action_and_recipient() -> None:
    moment = datetime(2026, 1, 16)
    key = action_key("p", "a1", "enter", moment, 0, "c1")
    assert key == "f338c04ab3a8894cad355f20d2f2073f"  # keys in old ledgers stay valid
    others = {action_key("q", "a1", "enter", moment, 0, "c1"),
              action_key("p", "a2", "enter", moment, 0, "c1"),
              action_key("p", "a1", "exit", moment, 0, "c1"),
              action_key("p", "a1", "enter", datetime(2026, 1, 17), 0, "c1"),
              action_key("p", "a1", "enter", moment, 1, "c1"),
              action_key("p", "a1", "enter", moment, 0, "c2"),
              action_key("p", "a1", "enter", moment, 0, None)}
    assert key not in others and len(others) == 7
