"""Every mistake in a project is reported with file:line:column and a way to fix it."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from retainer.errors import Problem, RetainerError, ValidationError
from retainer.project import Project
from tests.conftest import ProjectWriter

AS_OF = datetime(2026, 12, 1)


def problems(root: Path) -> list[Problem]:
    with pytest.raises(ValidationError) as caught:
        Project(root).plan(AS_OF)
    return list(caught.value.problems)


def one(root: Path) -> Problem:
    found = problems(root)
    assert len(found) == 1, [str(p) for p in found]
    return found[0]


def where(problem: Problem) -> str:
    assert problem.location is not None
    return f"{problem.location.file.name}:{problem.location.line}:{problem.location.column}"


def test_unknown_key_in_a_trait_suggests_the_right_one(write_project: ProjectWriter) -> None:
    root = write_project(rulebook={"t.yml": """
        traits:
          logins_30d: {count: events, windo: 30d}
        """})
    problem = one(root)
    assert problem.message == "unknown key 'windo'"
    assert where(problem) == "t.yml:2:31"
    assert problem.hint == "did you mean 'window'?"


def test_unknown_trait_in_a_rule_points_inside_the_expression(
        write_project: ProjectWriter) -> None:
    root = write_project(rulebook={"t.yml": """
        traits:
          logins_30d: {count: events, where: "name = 'login'", window: 30d}
        segments:
          lifecycle:
            - active: "login_30d > 0"
            - idle: else
        """})
    problem = one(root)
    assert "unknown name 'login_30d'" in problem.message
    assert where(problem) == "t.yml:5:16"  # the first character of login_30d inside the quotes
    assert problem.hint == "did you mean 'logins_30d'?"


def test_text_compared_with_a_number(write_project: ProjectWriter) -> None:
    root = write_project(rulebook={"t.yml": """
        traits:
          logins_30d: {count: events, window: 30d}
        tags:
          busy: "logins_30d > 'many'"
        """})
    problem = one(root)
    assert "compares a number with a text" in problem.message
    assert where(problem) == "t.yml:4:10"


def test_dependency_cycle_names_the_whole_path(write_project: ProjectWriter) -> None:
    root = write_project(rulebook={"t.yml": """
        traits:
          a_score: "b_score + 1"
          b_score: "c_score + 1"
          c_score: "a_score + 1"
        """})
    problem = one(root)
    assert problem.message == "dependency cycle: a_score → b_score → c_score → a_score"
    assert where(problem) == "t.yml:2:3"


def test_duplicate_names_across_files_point_at_both(write_project: ProjectWriter) -> None:
    root = write_project(rulebook={
        "a.yml": "traits:\n  logins: {count: events}\n",
        "b.yml": "traits:\n  logins: {count: events}\n"})
    with pytest.raises(ValidationError) as caught:
        Project(root)
    problem = caught.value.problems[0]
    assert "trait 'logins' is defined twice (first at" in problem.message
    assert "a.yml:2:3" in problem.message
    assert where(problem) == "b.yml:2:3"


def test_rule_after_else_is_refused(write_project: ProjectWriter) -> None:
    root = write_project(rulebook={"t.yml": """
        segments:
          lifecycle:
            - idle: else
            - active: "true"
        """})
    with pytest.raises(ValidationError) as caught:
        Project(root)
    problem = caught.value.problems[0]
    assert problem.message == ("rule 'active' comes after 'else' (idle) and could never "
                               "match; move 'else' to the end")


def test_missing_source_column_lists_the_real_ones(write_project: ProjectWriter) -> None:
    root = write_project(project="""
        name: tiny
        sources:
          accounts: {kind: accounts, from: data/accounts.csv, key: acount_id}
        """)
    problem = one(root)
    assert problem.message.startswith("source 'accounts': column 'acount_id' (key) does not "
                                      "exist in data/accounts.csv")
    assert where(problem) == "retainer.yml:3:60"
    assert problem.hint is not None
    assert "did you mean 'account_id'?" in problem.hint
    assert "account_id, name, created_at" in problem.hint


def test_unknown_function_and_subquery_are_refused(write_project: ProjectWriter) -> None:
    root = write_project(rulebook={"t.yml": """
        traits:
          logins: {count: events}
          sneaky: "(select count(*) from src_events)"
          odd: "sleep(logins)"
        """})
    messages = sorted(p.message for p in problems(root))
    assert messages == ["trait 'odd': unknown function 'sleep'",
                        "trait 'sneaky': subqueries are not allowed in rulebook expressions"]


def test_all_problems_are_reported_at_once(write_project: ProjectWriter) -> None:
    root = write_project(rulebook={"t.yml": """
        traits:
          one: "nope + 1"
          two: {count: nowhere}
          fine: {count: events}
        tags:
          three: "fine"
          four: "one > 1"
        """})
    messages = [p.message for p in problems(root)]
    assert len(messages) == 3  # 'four' reads the broken 'one' and is not reported twice
    assert any("unknown name 'nope'" in m for m in messages)
    assert any("unknown source 'nowhere'" in m for m in messages)
    assert any("'fine' is a number, not a condition" in m for m in messages)


def test_a_window_on_a_source_without_time(write_project: ProjectWriter) -> None:
    root = write_project(rulebook={"t.yml": """
        traits:
          executives: {count: contacts, where: "role = 'executive'", window: 30d}
        """})
    problem = one(root)
    assert "has a window but source 'contacts' has no time column" in problem.message


def test_malformed_yaml_names_the_line(write_project: ProjectWriter) -> None:
    root = write_project(rulebook={"t.yml": "traits:\n  a: {count: events\n  b: 1\n"})
    with pytest.raises(RetainerError) as caught:
        Project(root)
    assert caught.value.problem.message.startswith("invalid YAML")
    assert caught.value.problem.location is not None
    assert caught.value.problem.location.line == 3


def test_missing_project_file(tmp_path: Path) -> None:
    with pytest.raises(RetainerError) as caught:
        Project(tmp_path)
    assert "no retainer.yml" in caught.value.problem.message
    assert "retainer init" in (caught.value.problem.hint or "")


def test_missing_data_file(write_project: ProjectWriter) -> None:
    root = write_project(project="""
        name: tiny
        sources:
          accounts: {kind: accounts, from: data/nothing.csv, key: account_id}
        """)
    with pytest.raises(RetainerError) as caught:
        Project(root).plan(AS_OF)
    assert caught.value.problem.message == "source 'accounts': no file matches data/nothing.csv"
    assert where(caught.value.problem) == "retainer.yml:3:36"


def test_source_needs_its_mapping_columns(write_project: ProjectWriter) -> None:
    root = write_project(project="""
        name: tiny
        sources:
          accounts: {kind: accounts, from: data/accounts.csv, key: account_id}
          events: {from: data/events.csv, time: ts}
        """)
    with pytest.raises(ValidationError) as caught:
        Project(root)
    assert caught.value.problems[0].message == (
        "a source of kind 'events' needs 'account' or 'contact' (the column that holds the "
        "account id)")


def test_reserved_and_clashing_names(write_project: ProjectWriter) -> None:
    root = write_project(rulebook={"t.yml": """
        traits:
          health: {count: events}
          busy: {count: events}
        tags:
          busy: "busy > 0"
        """})
    messages = [p.message for p in problems(root)]
    assert "'health' is a reserved name" in messages
    assert "'busy' is used by both a trait and a tag" in messages
