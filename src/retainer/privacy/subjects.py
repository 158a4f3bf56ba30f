"""Who `retainer forget` means: a contact id, or every contact with an email address.

Contacts are read from the contacts source itself (through an embedded DuckDB, which reads
files and DuckDB databases alike), so a person is found even before any run has seen them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from sqlglot import exp

from retainer.errors import RetainerError
from retainer.privacy.tombstones import normal_email
from retainer.rulebook.loader import Rulebook
from retainer.rulebook.models import Source


@dataclass(frozen=True)
class Subject:
    """A person to forget: the contact ids and the addresses that are theirs."""

    contact_ids: tuple[str, ...]
    emails: tuple[str, ...]

    @property
    def described(self) -> str:
        ids = ", ".join(self.contact_ids) or "no contact id"
        count = len(self.contact_ids)
        return f"contact{'s' if count != 1 else ''} {ids}" if count else ids


def contacts_source(rulebook: Rulebook) -> tuple[str, Source] | None:
    name = rulebook.source_of_kind("contacts")
    return (name, rulebook.sources[name]) if name is not None else None


def email_source(rulebook: Rulebook) -> tuple[str, Source, str]:
    """The contacts source and its email column, or an error saying how to declare it."""
    found = contacts_source(rulebook)
    if found is None:
        raise RetainerError("the project has no contacts source, so no one can be found by "
                            "email", hint="declare a source of kind 'contacts' with 'email: "
                            "<column>', or forget by --contact ID")
    name, source = found
    if source.email is None:
        raise RetainerError(f"source '{name}' declares no email column",
                            location=rulebook.source_location(name),
                            hint=f"add 'email: <column>' to source '{name}' (the column that "
                                 "holds each contact's address), or forget by --contact ID")
    return name, source, source.email


def read_contacts(rulebook: Rulebook, ids: Sequence[str] = (), emails: Sequence[str] = ()
                  ) -> list[tuple[str, str | None]]:
    """(contact id, normalised address or None) of contact rows with one of the ids or
    addresses. Empty when there is no contacts source."""
    found = contacts_source(rulebook)
    if found is None or not (ids or emails):
        return []
    name, source = found
    assert source.key is not None
    from retainer.compile.staging import src
    from retainer.engines.duckdb import DuckDBEngine
    reader = DuckDBEngine()
    try:
        try:
            reader.attach_sources(replace(rulebook, sources={name: source}))
        except RetainerError as exc:
            raise RetainerError(f"cannot read the contacts source to find the person: "
                                f"{exc.problem.message}", location=exc.problem.location,
                                hint="forget by --contact ID; contacts are read by the "
                                     "embedded engine from files or a DuckDB database"
                                ) from None
        key = exp.cast(exp.column(source.key, quoted=True), "VARCHAR")
        address: exp.Expr = exp.cast(exp.null(), "VARCHAR")
        if source.email is not None:
            address = exp.Lower(this=exp.Trim(this=exp.cast(
                exp.column(source.email, quoted=True), "VARCHAR")))
        conditions: list[exp.Expr] = []
        parameters: list[str] = []
        if ids:
            conditions.append(key.copy().isin(*(exp.Placeholder() for _ in ids)))
            parameters += list(ids)
        if emails and source.email is not None:
            conditions.append(address.copy().isin(*(exp.Placeholder() for _ in emails)))
            parameters += [normal_email(e) for e in emails]
        if not conditions:
            return []
        query = (exp.select(key, address).distinct().from_(src(name))
                 .where(exp.or_(*conditions)).order_by(key.copy()))
        return [(str(r[0]), r[1]) for r in reader.query(query, parameters)]
    finally:
        reader.close()
