"""Playbook uplift: the outcome rate of treated accounts against their holdout group.

A playbook with a holdout leaves a random share of its eligible accounts untreated; the uplift
is the treated outcome rate (retention, activation, …) minus the holdout's, with Newcombe's
interval for a difference of two proportions. Playbooks and their ledger are not part of
Retainer yet, so `uplifts` finds none; the statistics are ready for them.
"""

from __future__ import annotations

from dataclasses import dataclass

from retainer.measure import stats
from retainer.rulebook.loader import Rulebook

NO_PLAYBOOKS = "No playbooks with holdouts yet."


@dataclass(frozen=True)
class Arm:
    accounts: int
    successes: int      # accounts with the outcome (retained, activated, …)

    @property
    def rate(self) -> stats.Estimate:
        return stats.wilson(self.successes, self.accounts)


@dataclass(frozen=True)
class Uplift:
    playbook: str
    outcome: str
    treated: Arm
    holdout: Arm
    difference: stats.Estimate

    @property
    def small(self) -> bool:
        return min(self.treated.accounts, self.holdout.accounts) < 30


def uplift(playbook: str, outcome: str, treated: Arm, holdout: Arm,
           confidence: float = 0.95) -> Uplift:
    difference = stats.difference_of_proportions(
        treated.successes, treated.accounts, holdout.successes, holdout.accounts, confidence)
    return Uplift(playbook, outcome, treated, holdout, difference)


def uplifts(rulebook: Rulebook) -> list[Uplift]:
    """Every playbook's uplift against its holdout — none until playbooks exist."""
    return []
