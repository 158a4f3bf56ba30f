"""`retainer validate` checks playbooks: every problem names file:line and a fix."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from retainer.checks import check_activation
from retainer.errors import Problem, ValidationError
from retainer.project import Project
from tests.playbooks.conftest import DATA, PROJECT, SEGMENTS

GOOD = """
destinations:
  outbox: {type: files, dir: outbox}
  hook: {type: webhook, url: "http://127.0.0.1:9/x"}
playbooks:
  ok:
    purpose: marketing
    on: {enter: stage.fresh}
    when: "logins_30d = 0 and health_band is null"
    actions:
      - task: {owner: owner, title: "Call {name}", note: "{stage}"}
      - message: {to: outbox, template: t, roles: [practitioner], fields: [name],
                  contact_fields: [country]}
      - webhook: {to: hook, fields: [stage]}
"""


def problems(write_project: Callable[..., Path], playbooks: str,
             project: str = PROJECT) -> list[Problem]:
    root = write_project(project, {"segments.yml": SEGMENTS, "playbooks.yml": playbooks},
                         DATA)
    loaded = Project(root)
    catalog = loaded.catalog()
    try:
        check_activation(loaded.rulebook, loaded.plan(catalog=catalog), catalog)
    except ValidationError as exc:
        return list(exc.problems)
    return []


def one(found: list[Problem]) -> Problem:
    assert len(found) == 1, [str(p) for p in found]
    return found[0]


def test_a_good_playbook_passes(write_project: Callable[..., Path]) -> None:
    assert problems(write_project, GOOD.replace(" and health_band is null", "")) == []


@pytest.mark.parametrize(("replace", "by", "message", "line", "hint"), [
    ("enter: stage.fresh", "enter: stage.frsh", "'frsh' is not a segment of stage", 7,
     "did you mean 'fresh'"),
    ("enter: stage.fresh", "enter: stag.fresh", "unknown dimension 'stag'", 7,
     "did you mean 'stage'"),
    ("enter: stage.fresh", "enter: bsy", "'bsy' is not a tag", 7, "did you mean 'busy'"),
    ("logins_30d = 0", "logins_3d = 0", "unknown name 'logins_3d'", 8,
     "did you mean 'logins_30d'"),
    ("logins_30d = 0", "stage = 3", "compares a text with a number", 8, "quote text"),
    ("{name}", "{nmae}", "template field '{nmae}' is not a column", 10,
     "did you mean 'name'"),
    ("owner: owner", "owner: ownr", "task owner 'ownr' is not a column", 10,
     "did you mean 'owner'"),
    ("roles: [practitioner]", "roles: [practioner]", "no contact has role 'practioner'", 11,
     "did you mean 'practitioner'"),
    ("to: outbox", "to: outbx", "no destination named 'outbx'", 11,
     "did you mean 'outbox'"),
    ("to: hook", "to: outbox", "a webhook action needs a webhook destination", 13, None),
    ("fields: [name]", "fields: [nam]", "'nam' is not a column of the results", 11,
     "did you mean 'name'"),
    ("contact_fields: [country]", "contact_fields: [county]",
     "'county' is not a column of the contacts source", 12, "did you mean 'country'"),
])
def test_each_problem_points_at_its_line(write_project: Callable[..., Path], replace: str,
                                         by: str, message: str, line: int,
                                         hint: str | None) -> None:
    text = GOOD.replace(" and health_band is null", "")
    assert replace in text
    problem = one(problems(write_project, text.replace(replace, by, 1)))
    assert message in problem.message
    assert problem.location is not None
    assert problem.location.file.name == "playbooks.yml" and problem.location.line == line
    if hint:
        assert hint in (problem.hint or "")


def test_stops_must_name_other_playbooks(write_project: Callable[..., Path]) -> None:
    text = GOOD.replace(" and health_band is null", "") + """
  stopper:
    purpose: operations
    when: "busy"
    stops: [okk, stopper]
    actions: [{route: {queue: q}}]
"""
    found = problems(write_project, text)
    assert [p.message for p in found] == ["'okk' is not a playbook",
                                          "playbook 'stopper' stops itself"]
    assert "did you mean 'ok'" in (found[0].hint or "")


def test_people_need_contacts_and_consents(write_project: Callable[..., Path]) -> None:
    no_consents = PROJECT.replace(
        "  consents: {kind: consents, from: data/consents.csv, contact: contact_id, "
        "time: recorded_at}\n", "")
    text = GOOD.replace(" and health_band is null", "")
    problem = one(problems(write_project, text, no_consents))
    assert problem.message == ("playbook 'ok' reaches people, but there is no consents "
                               "source to check them against")
    assert "docs/consent.md" in (problem.hint or "")


def test_the_consent_source_needs_its_columns(write_project: Callable[..., Path]) -> None:
    root = write_project(PROJECT, {"segments.yml": SEGMENTS, "playbooks.yml": GOOD.replace(
        " and health_band is null", "")}, {**DATA, "consents.csv": "contact_id,recorded_at,"
                                           "purpose,state\n"})
    loaded = Project(root)
    catalog = loaded.catalog()
    with pytest.raises(ValidationError) as caught:
        check_activation(loaded.rulebook, loaded.plan(catalog=catalog), catalog)
    assert [p.message for p in caught.value.problems] == [
        "the consents source 'consents' has no column 'channel'",
        "the consents source 'consents' has no column 'status'"]
    assert caught.value.problems[0].location.file.name == "retainer.yml"  # type: ignore


def test_levels_must_match(write_project: Callable[..., Path]) -> None:
    text = """
playbooks:
  per_contact:
    purpose: operations
    entity: contact
    on: {enter: stage.fresh}
    actions: [{route: {queue: q}}]
"""
    problem = one(problems(write_project, text))
    assert "acts on contacts, but the rulebook computes nothing per contact" in \
        problem.message
