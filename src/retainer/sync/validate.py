"""Checks of this part of the rulebook against the compiled plan (being built)."""

from __future__ import annotations

from retainer.compile.catalog import Catalog
from retainer.compile.plan import Plan
from retainer.errors import Problem
from retainer.rulebook.loader import Rulebook


def problems(rulebook: Rulebook, plan: Plan, catalog: Catalog) -> list[Problem]:
    return []
