"""The compiler's output for the demo rulebook, pinned per dialect.

A change in emitted SQL shows up as a diff in review. Regenerate deliberately with
`RETAINER_UPDATE_GOLDEN=1 ./dev test tests/compile/test_golden_sql.py`.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from retainer.compile.plan import Plan, compile_plan
from retainer.demo.generator import DemoSummary
from retainer.project import Project

GOLDEN = Path(__file__).parent.parent / "golden"
AS_OF = datetime(2026, 12, 1)
CLOCK = datetime(2026, 12, 1, 6, 0)


@pytest.fixture(scope="module")
def demo_project_loaded(demo_project: tuple[Path, DemoSummary]) -> Project:
    return Project(demo_project[0])


@pytest.fixture(scope="module")
def demo_plan(demo_project_loaded: Project) -> Plan:
    project = demo_project_loaded
    return compile_plan(project.rulebook, project.catalog(), AS_OF, CLOCK)


@pytest.mark.parametrize("dialect", ["duckdb", "postgres"])
def test_golden_sql(demo_project_loaded: Project, dialect: str) -> None:
    project = demo_project_loaded
    plan = compile_plan(project.rulebook, project.catalog(), AS_OF, CLOCK, dialect)
    golden = GOLDEN / f"demo.{dialect}.sql"
    sql = plan.sql(dialect)
    if os.environ.get("RETAINER_UPDATE_GOLDEN"):
        golden.write_text(sql, encoding="utf-8")
    assert golden.exists(), f"missing {golden}; regenerate with RETAINER_UPDATE_GOLDEN=1"
    assert sql == golden.read_text(encoding="utf-8")


@pytest.mark.parametrize("dialect", ["duckdb", "postgres", "spark", "snowflake", "bigquery"])
def test_every_step_parses_back_in_its_dialect(demo_plan: Plan, dialect: str) -> None:
    for step in demo_plan.steps:
        statement = step.statement(dialect)
        assert sqlglot.parse_one(statement, read=dialect) is not None, step.name


def test_one_aggregate_pass_per_source_and_entity(demo_plan: Plan) -> None:
    passes = [s.name for s in demo_plan.steps if s.name.startswith("agg_")]
    # The account pass over events reads every row (quality counts, all-time traits): its
    # windowed traits, which need DISTINCT and the contacts' role, read only their 90 days
    # in a pass of their own. Surveys' windowed average needs nothing extra: one pass.
    assert passes == ["agg_events_by_contact", "agg_events", "agg_events_windowed",
                      "agg_subscriptions", "agg_surveys", "agg_tickets", "agg_contacts"]
    steps = {s.name: s.query for s in demo_plan.steps}
    assert steps["agg_events"].args.get("where") is None
    assert not list(steps["agg_events"].find_all(exp.Distinct))
    assert steps["agg_events_windowed"].args.get("where") is not None
    # Only the windowed pass joins the contacts (for `contact.role`).
    assert "contact__role" not in steps["stg_events"].sql()
    assert "contact__role" in steps["stg_events_windowed"].sql()
    assert set(steps["agg_events_windowed"].named_selects) == {
        "__account", "logins_30d", "logins_prev_30d", "active_days_30d", "features_90d",
        "seats_added_90d", "exec_active_90d"}
    # The contact pass is windowed already: nothing to split off.
    assert list(steps["agg_events_by_contact"].find_all(exp.Distinct))
