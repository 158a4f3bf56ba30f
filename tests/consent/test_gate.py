"""The consent gate at dispatch, end to end: messages through a real files destination,
decided by the consents file as it is at the moment of dispatch, every decision logged."""

from __future__ import annotations

import csv
from datetime import datetime, timedelta
from pathlib import Path

from retainer.project import Project
from tests.playbooks.conftest import Writer, act_on, decision_rows, ledger_rows

MESSAGES = """
destinations:
  outbox: {type: files, dir: outbox, format: csv}
consent:
  jurisdiction: country
playbooks:
  tips:
    purpose: marketing
    when: "tenure_days >= 0"
    cooldown: 1d
    actions:
      - message: {to: outbox, template: tips, channel: email, fields: [name]}
"""
CONSENTS = ("contact_id,purpose,channel,status,legal_basis,jurisdiction,recorded_at,source\n"
            "c3,marketing,email,denied,consent,US-NY,2025-12-01,preference_center\n"
            "c4,marketing,email,granted,consent,FR,2026-01-10,signup_form\n"
            "c4,marketing,phone,withdrawn,consent,FR,2026-01-11,support_call\n")


def outbox(root: Path) -> dict[str, dict[str, str]]:
    path = root / "outbox" / "messages.csv"
    if not path.exists():
        return {}
    with path.open(newline="") as handle:
        return {row["key"]: row for row in csv.DictReader(handle)}


def test_each_jurisdiction_gets_its_rule_and_every_decision_is_logged(
        make_project: Writer) -> None:
    root = make_project(MESSAGES, data={"consents.csv": CONSENTS})
    report = act_on(root)
    assert report.ok
    status = {r["contact_id"]: r["status"] for r in ledger_rows(root)}
    # c1: DE (EU), no consent recorded → opt-in says no. c2: US, no objection → opt-out
    # says yes. c3: denied. c4: FR, granted for email (the phone withdrawal is another
    # channel).
    assert status == {"c1": "suppressed", "c2": "sent", "c3": "suppressed", "c4": "sent"}
    reasons = {d["contact_id"]: (d["outcome"], d["reason"], d["policy"], d["rule"],
                                 d["jurisdiction"]) for d in decision_rows(root)}
    assert reasons == {
        "c1": ("suppressed", "EU marketing is opt-in and no consent is recorded", "eu",
               "opt_in", "DE"),
        "c2": ("sent", "US marketing is opt-out: no objection recorded", "us", "opt_out",
               "US"),
        "c3": ("suppressed", "denied 2025-12-01 via preference_center", "us", "opt_out",
               "US-NY"),
        "c4": ("sent", "granted 2026-01-10 via signup_form (consent)", "eu", "opt_in", "FR"),
    }
    c4 = next(d for d in decision_rows(root) if d["contact_id"] == "c4")
    assert (c4["legal_basis"], c4["consent_status"], c4["consent_source"]) == (
        "consent", "granted", "signup_form")
    assert c4["consent_recorded_at"] == datetime(2026, 1, 10)
    assert c4["rulebook_hash"] == Project(root).rulebook.content_hash and c4["act_id"] == 1
    delivered = {row["entity_id"]: row for row in outbox(root).values()}
    assert sorted(delivered) == ["a1", "a3"]     # a2's only contact, c3, said no
    assert '"c4@initech.example"' in delivered["a3"]["contact"]
    assert '"name": "Initech"' in delivered["a3"]["fields"]
    assert "c1@acme.example" not in "".join(str(r) for r in outbox(root).values())


def test_a_withdrawal_recorded_after_the_run_stops_the_next_dispatch(
        make_project: Writer) -> None:
    root = make_project(MESSAGES, data={"consents.csv": CONSENTS})
    act_on(root)
    assert {r["contact_id"] for r in ledger_rows(root, "status = 'sent'")} == {"c2", "c4"}
    Project(root).run(datetime(2026, 1, 18))
    # After the run, before the act: c4 withdraws, c2 objects (opt-out).
    with (root / "data" / "consents.csv").open("a") as handle:
        handle.write("c4,marketing,email,withdrawn,consent,FR,2026-01-18 09:00:00,"
                     "preference_center\n"
                     "c2,marketing,email,denied,legitimate_interest,US,2026-01-18 10:00:00,"
                     "unsubscribe_link\n")
    act_on(root)
    second = ledger_rows(root, "as_of = '2026-01-18'")
    assert {r["contact_id"]: r["status"] for r in second} == {
        "c1": "suppressed", "c2": "suppressed", "c3": "suppressed", "c4": "suppressed"}
    latest = {d["contact_id"]: d["reason"] for d in decision_rows(root) if d["act_id"] == 2}
    assert latest["c4"] == "withdrawn 2026-01-18 via preference_center"
    assert latest["c2"] == "denied 2026-01-18 via unsubscribe_link"
    # Nothing new reached the outbox for the second occurrence.
    assert {row["occurrence"][:10] for row in outbox(root).values()} == {"2026-01-16"}


def test_a_record_dated_in_the_future_does_not_count_yet(make_project: Writer) -> None:
    future = CONSENTS + "c1,marketing,email,granted,consent,DE,2999-01-01,signup_form\n"
    root = make_project(MESSAGES, data={"consents.csv": future})
    act_on(root)
    assert {r["contact_id"]: r["status"] for r in ledger_rows(root)}["c1"] == "suppressed"


def test_unknown_jurisdictions_and_a_custom_policy(make_project: Writer) -> None:
    contacts = ("contact_id,account_id,role,email,country\n"
                "c1,a1,practitioner,c1@acme.example,\n"
                "c2,a1,executive,c2@acme.example,US-CA\n"
                "c3,a2,practitioner,c3@globex.example,BR\n"
                "c4,a3,practitioner,c4@initech.example,US-TX\n")
    rulebook = MESSAGES.replace("  jurisdiction: country\n", """  jurisdiction: country
  otherwise: opt_out
  jurisdictions:
    california: {match: [US-CA], purposes: {marketing: opt_in}}
""")
    root = make_project(rulebook, data={"contacts.csv": contacts, "consents.csv": (
        "contact_id,purpose,channel,status,legal_basis,jurisdiction,recorded_at,source\n")})
    act_on(root)
    decided = {d["contact_id"]: (d["outcome"], d["policy"], d["reason"])
               for d in decision_rows(root)}
    assert decided == {
        "c1": ("sent", "otherwise",
               "jurisdiction unknown; otherwise marketing is opt-out: no objection recorded"),
        "c2": ("suppressed", "california",
               "california marketing is opt-in and no consent is recorded"),
        "c3": ("sent", "otherwise",
               "BR matches no policy; otherwise marketing is opt-out: no objection recorded"),
        "c4": ("sent", "us", "US marketing is opt-out: no objection recorded"),
    }


def test_the_dry_run_previews_the_gate_without_logging(make_project: Writer) -> None:
    root = make_project(MESSAGES, data={"consents.csv": CONSENTS})
    report = act_on(root, dry_run=True)
    previews = {i.contact_id: report.consent[i.key] for i in report.plan.firing()}
    assert previews["c1"] == "suppressed: EU marketing is opt-in and no consent is recorded"
    assert previews["c4"] == "allowed: granted 2026-01-10 via signup_form (consent)"
    assert decision_rows(root) == [] and ledger_rows(root) == [] and outbox(root) == {}


def test_a_record_without_a_channel_applies_to_every_channel(make_project: Writer) -> None:
    # c4 granted email marketing, then withdrew from marketing altogether (no channel).
    withdrawn = CONSENTS + "c4,marketing,,withdrawn,consent,FR,2026-01-12,support_call\n"
    root = make_project(MESSAGES, data={"consents.csv": withdrawn})
    act_on(root)
    decided = {d["contact_id"]: (d["outcome"], d["reason"]) for d in decision_rows(root)}
    assert decided["c4"] == ("suppressed", "withdrawn 2026-01-12 via support_call")
    assert "c4@initech.example" not in str(outbox(root))


def test_a_withdrawal_counts_from_the_exact_moment_it_was_recorded(
        make_project: Writer) -> None:
    moment = datetime(2026, 1, 16, 9, 0, 0, 250_000)
    consents = CONSENTS + f"c4,marketing,email,withdrawn,consent,FR,{moment},form\n"
    root = make_project(MESSAGES, data={"consents.csv": consents})
    before = act_on(root, dry_run=True, clock=lambda: moment - timedelta(microseconds=1))
    assert {before.consent[i.key] for i in before.plan.firing() if i.contact_id == "c4"} == {
        "allowed: granted 2026-01-10 via signup_form (consent)"}
    act_on(root, clock=lambda: moment)
    [c4] = [d for d in decision_rows(root) if d["contact_id"] == "c4"]
    assert (c4["outcome"], c4["decided_at"]) == ("suppressed", moment)
    assert c4["reason"] == "withdrawn 2026-01-16 via form"
