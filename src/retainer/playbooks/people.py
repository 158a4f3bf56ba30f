"""The contacts a playbook can reach, read from the contacts source at the time of the act.

Addresses, roles and the jurisdiction column come from the source as it is now (a changed
address is the one used); each contact belongs to the account its row names, through the
identities source when there is one. Of several rows for one contact the latest by time wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlglot import exp

from retainer.compile.sql import col, utc_time
from retainer.compile.staging import src
from retainer.consent.sources import open_sources
from retainer.rulebook.loader import Rulebook


@dataclass(frozen=True)
class Person:
    contact_id: str
    account_id: str | None
    role: str | None
    email: str | None = None
    jurisdiction: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)   # contact_fields asked for
    since: datetime | None = None                           # the row's time, for "first"


def read_people(rulebook: Rulebook, extra: Sequence[str] = ()) -> dict[str, Person]:
    """Every contact by id, with `extra` columns of the contacts source in `fields`."""
    name = rulebook.source_of_kind("contacts")
    if name is None:
        return {}
    source = rulebook.sources[name]
    assert source.key is not None and source.account is not None
    identities = rulebook.source_of_kind("identities")
    jurisdiction = rulebook.consent.jurisdiction
    wanted = list(dict.fromkeys(extra))
    with open_sources(rulebook, [name, *([identities] if identities else [])]) as (
            engine, catalog):
        available = set(catalog.names(name))

        def text(column: str | None) -> exp.Expr:
            if column is None or column not in available:
                return exp.cast(exp.null(), "VARCHAR")
            return exp.cast(col(column, "s"), "VARCHAR")

        time: exp.Expr = exp.cast(exp.null(), "TIMESTAMP")
        if source.time and source.time in available:
            time = utc_time(col(source.time, "s"), catalog.engine_type(name, source.time),
                            engine.capabilities.text_time)
        query = exp.select(
            exp.alias_(text(source.key), "contact_id"), exp.alias_(text(source.account),
                                                                   "account_id"),
            exp.alias_(text(source.role), "role"), exp.alias_(text(source.email), "email"),
            exp.alias_(text(jurisdiction), "jurisdiction"), exp.alias_(time, "since"),
            *(exp.alias_(col(c, "s") if c in available else exp.null(), f"f{i}")
              for i, c in enumerate(wanted)),
        ).from_(exp.alias_(exp.to_table(src(name)), "s"))
        rows = engine.query(query)
        aliases: dict[str, str] = {}
        if identities:
            spec = rulebook.sources[identities]
            assert spec.alias is not None and spec.account is not None
            aliases = {str(a): str(b) for a, b in engine.query(exp.select(
                exp.cast(col(spec.alias), "VARCHAR"), exp.cast(col(spec.account), "VARCHAR"))
                .from_(src(identities))) if a is not None and b is not None}
    people: dict[str, Person] = {}
    for row in sorted(rows, key=lambda r: (r[5] is not None, r[5] or datetime.min)):
        if row[0] is None:
            continue
        account = aliases.get(row[1], row[1]) if row[1] is not None else None
        people[str(row[0])] = Person(str(row[0]), account, row[2], row[3], row[4],
                                     {c: row[6 + i] for i, c in enumerate(wanted)}, row[5])
    return people


def by_account(people: dict[str, Person]) -> dict[str, list[Person]]:
    """Contacts per account, the earliest first (then by id): "the first with a role"."""
    grouped: dict[str, list[Person]] = {}
    for person in people.values():
        if person.account_id is not None:
            grouped.setdefault(person.account_id, []).append(person)
    for members in grouped.values():
        members.sort(key=lambda p: (p.since or datetime.max, p.contact_id))
    return grouped
