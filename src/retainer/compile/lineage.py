"""Which source fields each element depends on, and the purpose check (being built)."""

from __future__ import annotations

from retainer.compile.catalog import Catalog
from retainer.compile.plan import Plan
from retainer.errors import Problem
from retainer.rulebook.loader import Rulebook


def purpose_problems(rulebook: Rulebook, plan: Plan, catalog: Catalog) -> list[Problem]:
    return []
