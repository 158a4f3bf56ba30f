"""Lineage: which source fields each element depends on, the chain that leads there, and
the purpose check that refuses a playbook or sync using a field not allowed for its purpose."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from retainer.compile.lineage import field_lineage, trace
from retainer.compile.lineage.graph import Element, Field
from retainer.errors import RetainerError
from retainer.privacy.purposes import purpose_problems
from retainer.project import Project
from tests.conftest import BASE_PROJECT, ProjectWriter

RULEBOOK = """
traits:
  logins_30d:     {count: events, where: "name = 'login'", window: 30d}
  contact_logins: {count: events, where: "name = 'login'", entity: contact}
  active_users:   {count: contacts, where: "contact_logins > 0 and role = 'practitioner'"}
  exec_events:    {count: events, where: "contact.role = 'executive'"}
  tenure_days:    "days_between(account.created_at, as_of)"
  busy:           "logins_30d + active_users"
segments:
  lifecycle:
    - new:    "tenure_days <= 30"
    - active: "busy > 2"
    - idle:   else
tags:
  champion: {entity: contact, when: "role = 'practitioner' and contact_logins > 0"}
health:
  components:
    usage: {trait: logins_30d, weight: 1, scale: {0: 0, 10: 100}}
  bands: {red: 0, green: 50}
"""


def fields(*names: str) -> frozenset[Field]:
    return frozenset(Field(*name.split(".")) for name in names)


@pytest.fixture
def lineage_project(write_project: ProjectWriter) -> Project:
    return Project(write_project(rulebook={"rules.yml": RULEBOOK}))


def test_fields_are_traced_through_derived_traits_rollups_filters_and_rule_order(
        lineage_project: Project) -> None:
    found = field_lineage(lineage_project.rulebook, lineage_project.catalog())
    logins = fields("events.account_id", "events.name", "events.ts")
    per_contact = fields("events.name", "events.ts", "events.user_id")
    # A roll-up reads the contact trait, the contacts' role, and which account each is in.
    rollup = per_contact | fields("contacts.account_id", "contacts.role")
    tenure = fields("accounts.created_at")
    assert found[Element("trait", "logins_30d")] == logins
    assert found[Element("trait", "contact_logins")] == per_contact
    assert found[Element("trait", "active_users")] == rollup
    # `contact.role` in a filter joins the row's contact: its contact column counts too.
    assert found[Element("trait", "exec_events")] == fields(
        "events.account_id", "events.ts", "events.user_id", "contacts.role")
    assert found[Element("trait", "tenure_days")] == tenure
    assert found[Element("trait", "busy")] == logins | rollup
    # A segment is reached only when the rules before it fail: it depends on them too.
    assert found[Element("segment", "lifecycle.new")] == tenure
    assert found[Element("segment", "lifecycle.active")] == tenure | logins | rollup
    assert found[Element("segment", "lifecycle.idle")] == tenure | logins | rollup
    assert found[Element("dimension", "lifecycle")] == tenure | logins | rollup
    assert found[Element("tag", "champion")] == per_contact | fields("contacts.role")
    assert found[Element("component", "usage")] == logins
    assert found[Element("band", "health_band")] == logins


def test_a_chain_shows_how_an_element_reaches_a_field(lineage_project: Project) -> None:
    graph = trace(lineage_project.rulebook, lineage_project.catalog())
    chain = graph.chain(Element("segment", "lifecycle.idle"), Field("contacts", "role"))
    assert " → ".join(map(str, chain)) == (
        "segment lifecycle.idle → segment lifecycle.active → trait busy → "
        "trait active_users → contacts.role")
    assert graph.chain(Element("trait", "tenure_days"), Field("events", "ts")) == ()
    assert [str(e) for e in graph.users(Field("accounts", "created_at"))] == [
        "dimension lifecycle", "segment lifecycle.active", "segment lifecycle.idle",
        "segment lifecycle.new", "trait tenure_days"]


def test_find_resolves_what_a_person_types(lineage_project: Project) -> None:
    graph = trace(lineage_project.rulebook, lineage_project.catalog())
    assert graph.find("lifecycle.new") == Element("segment", "lifecycle.new")
    assert graph.find("health.usage") == Element("component", "usage")
    assert graph.find("trait busy") == Element("trait", "busy")
    with pytest.raises(RetainerError, match="no trait, segment, tag") as caught:
        graph.find("tenure_day")
    assert "did you mean 'tenure_days'" in str(caught.value.problem.hint)


PURPOSE_PROJECT = BASE_PROJECT + """\
  tickets:
    from: data/tickets.csv
    account: account_id
    time: opened_at
    provenance: {legal_basis: contract, purposes: [support], origin: help desk}
    columns:
      account_id: {purposes: [support, marketing, operations]}
      opened_at: {purposes: [support, marketing, operations]}
"""
ACTIVATION = """\
traits:
  refund_asks: {count: tickets, where: "body like '%refund%'", window: 90d}
segments:
  mood:
    - upset: "refund_asks > 0"
    - calm:  else
destinations:
  outbox: {type: files, dir: outbox}
playbooks:
  winback:
    purpose: marketing
    on: {enter: mood.calm}
    actions:
      - message: {to: outbox, template: winback}
syncs:
  crm: {to: outbox, purpose: marketing, columns: [mood]}
  desk: {to: outbox, purpose: support, columns: [mood]}
"""
TICKETS = "account_id,opened_at,body\na1,2026-11-20 10:00:00,please refund me\n"


def test_a_playbook_and_a_sync_using_a_field_not_allowed_for_their_purpose(
        write_project: ProjectWriter) -> None:
    root = write_project(PURPOSE_PROJECT, rulebook={"activation.yml": ACTIVATION},
                         data={"tickets.csv": TICKETS})
    project = Project(root)
    catalog = project.catalog()
    problems = purpose_problems(project.rulebook, project.plan(catalog=catalog), catalog)
    rulebook_file = root / "rulebook" / "activation.yml"
    declared = f"{root / 'retainer.yml'}:11:51 (sources: tickets: provenance: purposes)"
    assert [(str(p.location), p.message, p.hint) for p in problems] == [
        (f"{rulebook_file}:10:3",
         "playbook 'winback' (purpose marketing) uses tickets.body, which may be used only "
         "for support: playbook winback → segment mood.calm → segment mood.upset → "
         "trait refund_asks → tickets.body",
         f"if marketing is a lawful use of tickets.body, add it to the purposes declared at "
         f"{declared}; otherwise stop using it in this playbook"),
        (f"{rulebook_file}:16:3",
         "sync 'crm' (purpose marketing) uses tickets.body, which may be used only for "
         "support: sync crm → dimension mood → segment mood.upset → trait refund_asks → "
         "tickets.body",
         f"if marketing is a lawful use of tickets.body, add it to the purposes declared at "
         f"{declared}; otherwise stop using it in this sync"),
    ]


def test_purposes_declared_per_column_and_undeclared_fields(write_project: ProjectWriter
                                                            ) -> None:
    allowed = PURPOSE_PROJECT + "      body: {purposes: [support, marketing]}\n"
    root = write_project(allowed, rulebook={"activation.yml": ACTIVATION},
                         data={"tickets.csv": TICKETS})
    project = Project(root)
    catalog = project.catalog()
    assert purpose_problems(project.rulebook, project.plan(catalog=catalog), catalog) == []
    # Without any declaration, a field may serve every purpose.
    bare = BASE_PROJECT + "  tickets: {from: data/tickets.csv, account: account_id, " \
                          "time: opened_at}\n"
    root = write_project(bare, rulebook={"activation.yml": ACTIVATION},
                         data={"tickets.csv": TICKETS})
    project = Project(root)
    catalog = project.catalog()
    assert purpose_problems(project.rulebook, project.plan(catalog=catalog), catalog) == []


def test_declarations_for_columns_a_source_does_not_have(write_project: ProjectWriter
                                                         ) -> None:
    project_text = BASE_PROJECT.replace(
        "role: role}", "role: role, email: mail,\n             "
                       "columns: {rol: {purposes: [success]}}}")
    root = write_project(project_text)
    project = Project(root)
    catalog = project.catalog()
    problems = purpose_problems(project.rulebook, project.plan(catalog=catalog), catalog)
    assert [(str(p.location), p.message, p.hint) for p in problems] == [
        (f"{root / 'retainer.yml'}:6:24",
         "source 'contacts' declares provenance for column 'rol', which it does not have",
         "did you mean 'role'?"),
        (f"{root / 'retainer.yml'}:5:112",
         "source 'contacts': column 'mail' (email) does not exist",
         "columns there: contact_id, account_id, role"),
    ]


def test_lineage_of_the_demo_stays_inside_its_sources(demo_project: tuple[Path, object]
                                                      ) -> None:
    project = Project(demo_project[0])
    catalog = project.catalog()
    found = field_lineage(project.rulebook, catalog)
    for element, used in found.items():
        for field in used:
            assert catalog.has(field.source, field.column), (element, field)
    assert Field("surveys", "score") in found[Element("band", "health_band")]


ACTIONS = """
destinations:
  outbox: {type: files, dir: outbox}
playbooks:
  welcome:
    purpose: success
    on: {enter: lifecycle.new}
    actions:
      - task: {title: "Welcome {name}", owner: name}
      - message: {to: outbox, template: hi, roles: [executive], fields: [logins_30d],
                  contact_fields: [nickname]}
  nudge:
    purpose: success
    entity: contact
    when: "contact_logins = 0 and account.busy > 1"
    actions:
      - webhook: {to: outbox, fields: [champion]}
syncs:
  people: {to: outbox, entity: contact, columns: [contact_logins], where: "role = 'manager'"}
  accounts_out: {to: outbox}
"""


def test_what_playbooks_and_syncs_depend_on(write_project: ProjectWriter) -> None:
    project_text = BASE_PROJECT.replace("role: role}", "role: role, email: email}")
    contacts = "contact_id,account_id,role,email,nickname\nc1,a1,practitioner,a@x.org,A\n"
    root = write_project(project_text, rulebook={"rules.yml": RULEBOOK, "act.yml": ACTIONS},
                         data={"contacts.csv": contacts})
    project = Project(root)
    found = field_lineage(project.rulebook, project.catalog())
    tenure = fields("accounts.created_at")
    logins = fields("events.account_id", "events.name", "events.ts")
    per_contact = fields("events.name", "events.ts", "events.user_id")
    rollup = per_contact | fields("contacts.account_id", "contacts.role")
    people = fields("contacts.contact_id", "contacts.account_id", "contacts.email")
    # The trigger's segment, the task's title and owner (an account column), and the
    # message's recipients (by role, with their address), merge and contact fields.
    assert found[Element("playbook", "welcome")] == (
        fields("accounts.account_id", "accounts.name", "contacts.role", "contacts.nickname")
        | tenure | logins | people)
    # A contact playbook reads the contact's results and, as `account.`, its account's;
    # the webhook names the contact it is about.
    assert found[Element("playbook", "nudge")] == (
        people | per_contact | logins | rollup)
    assert found[Element("sync", "people")] == per_contact | fields(
        "contacts.contact_id", "contacts.account_id", "contacts.role")
    # A sync without columns sends every segment, tag and the health score of its entity.
    assert found[Element("sync", "accounts_out")] == (
        fields("accounts.account_id") | tenure | logins | rollup)


def test_validate_and_lineage_commands_show_the_refused_field(write_project: ProjectWriter
                                                              ) -> None:
    consents = "  consents: {kind: consents, from: data/consents.csv, contact: contact_id, " \
               "time: recorded_at}\n"
    root = write_project(PURPOSE_PROJECT + consents, rulebook={"activation.yml": ACTIVATION},
                         data={"tickets.csv": TICKETS, "consents.csv": "contact_id,purpose,"
                               "channel,status,legal_basis,jurisdiction,recorded_at,source\n"})
    command = str(Path(sys.executable).parent / "retainer")

    def retainer(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([command, *args, "-p", str(root)], capture_output=True,
                              text=True, timeout=120, env={"COLUMNS": "200",
                                                           "PATH": "/usr/bin:/bin"})
        assert "Traceback" not in done.stdout + done.stderr
        return done

    done = retainer("validate")
    assert done.returncode == 2
    assert "2 problem(s) in the project:" in done.stderr
    assert "playbook 'winback' (purpose marketing) uses tickets.body" in done.stderr
    overview = retainer("lineage").stdout
    assert "playbook winback (purpose marketing): 6 source fields, 1 not allowed for " \
           "marketing" in overview
    assert "  tickets: account_id, body ✗, opened_at" in overview
    assert "sync desk (purpose support): 4 source fields\n" in overview
    field = retainer("lineage", "tickets.body").stdout
    assert "tickets.body is used by 7 element(s)" in field
    assert "  playbook winback  (through segment mood.calm → segment mood.upset → trait " \
           "refund_asks)" in field
    one = retainer("lineage", "refund_asks").stdout
    assert "trait refund_asks depends on 3 source field(s)" in one
    assert "  tickets.body  for support  (contract, help desk)\n      directly" in one
    unknown = retainer("lineage", "refund_ask")
    assert unknown.returncode == 1
    assert "no trait, segment, tag, health, playbook or sync named 'refund_ask'" in \
        unknown.stderr and "did you mean 'refund_asks'?" in unknown.stderr
