"""Checks beyond the compiler's: playbooks, syncs and the purposes their data may serve.

`retainer validate` runs them, and so do `act` and `sync` before they touch anything.
"""

from __future__ import annotations

from retainer.compile.catalog import Catalog
from retainer.compile.plan import Plan
from retainer.errors import ValidationError
from retainer.playbooks import validate as playbook_checks
from retainer.privacy.purposes import purpose_problems
from retainer.rulebook.loader import Rulebook
from retainer.sync import validate as sync_checks


def check_activation(rulebook: Rulebook, plan: Plan, catalog: Catalog) -> None:
    """Raise ValidationError with every problem of playbooks, syncs and purposes."""
    problems = [*playbook_checks.problems(rulebook, plan, catalog),
                *sync_checks.problems(rulebook, plan, catalog)]
    if not problems:  # purposes are traced only through elements that are valid
        problems = purpose_problems(rulebook, plan, catalog)
    if problems:
        raise ValidationError(problems)
