"""The id columns a record carries are the ones the results name their entities by."""

from __future__ import annotations

from retainer.rulebook.loader import load_project
from retainer.sync.columns import key_columns
from tests.conftest import ProjectWriter

OWN_KEYS = """
name: keys
sources:
  accounts: {kind: accounts, from: data/accounts.csv, key: org_id}
  contacts: {kind: contacts, from: data/contacts.csv, key: person_id, account: org}
"""
NO_CONTACTS = """
name: keys
sources:
  accounts: {kind: accounts, from: data/accounts.csv, key: org_id}
"""


def test_the_sources_keys_name_the_records(write_project: ProjectWriter) -> None:
    rulebook = load_project(write_project(OWN_KEYS))
    assert key_columns(rulebook, "account") == ["org_id"]
    assert key_columns(rulebook, "contact") == ["person_id", "org"]


def test_without_a_contacts_source_a_contact_is_named_by_contact_id(
        write_project: ProjectWriter) -> None:
    rulebook = load_project(write_project(NO_CONTACTS))
    assert rulebook.key_column("contact") == "contact_id"
    assert key_columns(rulebook, "contact") == ["contact_id", "org_id"]
