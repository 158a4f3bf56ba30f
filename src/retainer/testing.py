"""Rule tests written by users: fixture rows in, expected traits and segments out.

A test file (`tests/*.yml` in a project) holds a list of cases:

    - name: a new account without activation is 'new'
      as_of: 2026-03-01
      given:
        accounts: [{account_id: a1, created_at: 2026-02-20}]
        events:   [{account_id: a1, user_id: u1, ts: 2026-02-25 10:00:00, name: login}]
      expect:
        accounts:
          a1: {lifecycle: new, logins_30d: 1}

Each case runs the whole compiled rulebook on DuckDB over only its fixture rows.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pydantic
from pydantic import Field

from retainer.compile.plan import compile_plan
from retainer.engines.duckdb import DuckDBEngine
from retainer.errors import Location, Problem, RetainerError, ValidationError
from retainer.explain import Explanation, explain
from retainer.project import Project, parse_as_of
from retainer.rulebook.fields import Model
from retainer.rulebook.yamlpos import load_yaml

Row = dict[str, Any]


class Expectations(Model):
    accounts: dict[str, Row] = Field(default_factory=dict)
    contacts: dict[str, Row] = Field(default_factory=dict)


class Case(Model):
    name: str
    as_of: datetime | date | str
    given: dict[str, list[Row]]
    expect: Expectations
    description: str | None = None


@dataclass(frozen=True)
class Mismatch:
    level: str
    entity_id: str
    column: str
    expected: Any
    actual: Any
    why: str | None = None


@dataclass
class CaseResult:
    case: Case
    location: Location
    mismatches: list[Mismatch] = field(default_factory=list)
    error: str | None = None

    @property
    def passed(self) -> bool:
        return not self.mismatches and self.error is None


def discover(project: Project) -> Iterator[tuple[Case, Location]]:
    problems: list[Problem] = []
    for entry in project.rulebook.config.tests:
        folder = project.rulebook.path(entry)
        files = sorted([*folder.glob("**/*.yml"), *folder.glob("**/*.yaml")]) \
            if folder.is_dir() else ([folder] if folder.is_file() else [])
        for file in files:
            document, positions = load_yaml(file)
            items = document.get("tests") if isinstance(document, dict) else document
            if not isinstance(items, list):
                problems.append(Problem("a test file holds a list of test cases",
                                        positions.key(())))
                continue
            for index, item in enumerate(items):
                try:
                    yield Case.model_validate(item), positions.key((index,))
                except pydantic.ValidationError as exc:
                    for error in exc.errors():
                        path = (index, *error["loc"])
                        problems.append(Problem(
                            f"test case: {error['msg']} at "
                            + ".".join(str(p) for p in error["loc"]), positions.value(path)))
    if problems:
        raise ValidationError(problems)


def run_case(project: Project, case: Case, location: Location) -> CaseResult:
    result = CaseResult(case, location)
    engine = DuckDBEngine()
    try:
        catalog = engine.attach_rows(project.rulebook, case.given)
        as_of = parse_as_of(case.as_of, "as_of:")
        plan = compile_plan(project.rulebook, catalog, as_of, as_of)
        engine.execute(plan)
        engine.publish(plan, {"as_of": as_of.isoformat(sep=" "),
                              "rulebook_hash": project.rulebook.content_hash})
        for level, expected in (("account", case.expect.accounts),
                                ("contact", case.expect.contacts)):
            for entity_id, columns in expected.items():
                result.mismatches += _compare(engine, level, str(entity_id), columns)
    except RetainerError as exc:
        result.error = str(exc)
    finally:
        engine.close()
    return result


def _compare(engine: DuckDBEngine, level: str, entity_id: str, expected: Row) -> list[Mismatch]:
    try:
        explanation = explain(engine, entity_id, level)
    except RetainerError as exc:
        return [Mismatch(level, entity_id, "(row)", "present", "missing", str(exc))]
    mismatches = []
    for column, want in expected.items():
        if column not in explanation.row:
            mismatches.append(Mismatch(level, entity_id, column, want, "(no such column)",
                                       "columns: " + ", ".join(explanation.row)))
            continue
        got = explanation.row[column]
        if not _equal(want, got):
            mismatches.append(Mismatch(level, entity_id, column, want, got,
                                       _why(explanation, column)))
    return mismatches


def _equal(want: Any, got: Any) -> bool:
    if want is None or got is None:
        return want is got
    if isinstance(want, bool) or isinstance(got, bool):
        return bool(want) == bool(got) and isinstance(got, bool) == isinstance(want, bool)
    if isinstance(want, (int, float)) and not isinstance(got, (str, datetime, date)):
        return math.isclose(float(want), float(got), rel_tol=1e-9, abs_tol=1e-6)
    if isinstance(got, (datetime, date)):
        try:
            return parse_as_of(str(want)) == parse_as_of(got)
        except RetainerError:
            return False
    return str(want) == str(got)


def _why(explanation: Explanation, column: str) -> str | None:
    """For a segment mismatch: the rule that matched instead, with its values."""
    for dimension in explanation.dimensions:
        if dimension.name != column:
            continue
        parts = []
        for rule in dimension.rules:
            values = ", ".join(f"{label}={value!r}" for clause in rule.clauses
                               for label, value in clause.uses)
            state = "matched" if rule.matched else "did not match"
            parts.append(f"{rule.segment}: {state}"
                         + (f" ({rule.when}; {values})" if rule.when else " (else)"))
        return "; ".join(parts)
    for tag in explanation.tags:
        if tag.name == column:
            values = ", ".join(f"{label}={value!r}" for c in tag.clauses for label, value in c.uses)
            return f"{tag.when} with {values}"
    if column in explanation.traits:
        return explanation.traits[column][1]
    return None


def run_all(project: Project) -> list[CaseResult]:
    return [run_case(project, case, location) for case, location in discover(project)]


__all__ = ["Case", "CaseResult", "Mismatch", "Path", "discover", "run_all", "run_case"]
