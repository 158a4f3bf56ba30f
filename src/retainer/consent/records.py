"""The consents source, read fresh: the latest record per (contact, purpose, channel).

A consents source names its contact and time columns (`contact:`, `time:`) and has the
columns `purpose`, `channel` and `status` (granted, denied or withdrawn); `legal_basis`,
`jurisdiction` and `source` (where the record came from) are used when present. Records
dated after the moment of the decision do not count yet. Of two records at the same
moment, the more restrictive wins (withdrawn, then denied, then granted).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlglot import exp

from retainer.compile.sql import col, timestamp, utc_time, varchar
from retainer.compile.staging import src
from retainer.consent.sources import consent_source, open_sources
from retainer.errors import DataError, RetainerError
from retainer.rulebook.loader import Rulebook

REQUIRED_COLUMNS = ("purpose", "channel", "status")
OPTIONAL_COLUMNS = ("legal_basis", "jurisdiction", "source")
STATUSES = ("granted", "denied", "withdrawn")
# Lower sorts first: at equal times the most restrictive record is the latest.
_RESTRICTIVENESS = {"withdrawn": 0, "denied": 1, "granted": 2}


@dataclass(frozen=True)
class ConsentRecord:
    contact_id: str
    purpose: str
    channel: str | None
    status: str
    legal_basis: str | None
    jurisdiction: str | None
    recorded_at: datetime
    origin: str | None          # the `source` column: signup_form, preference_center, …

    def rank(self) -> tuple[datetime, int]:
        """Later wins; at the same moment the more restrictive wins."""
        return self.recorded_at, -_RESTRICTIVENESS.get(self.status, -1)


def missing_columns(columns: Collection[str]) -> list[str]:
    return [c for c in REQUIRED_COLUMNS if c not in columns]


def read_consents(rulebook: Rulebook, now: datetime,
                  contacts: Collection[str] | None = None) -> list[ConsentRecord]:
    """The latest record of each (contact, purpose, channel) recorded at or before `now`,
    for the given contacts (default: all). No consents source: no records."""
    name = consent_source(rulebook)
    if name is None:
        return []
    source = rulebook.sources[name]
    with open_sources(rulebook, [name]) as (engine, catalog):
        available = catalog.names(name)
        missing = missing_columns(available)
        if missing:
            origin = rulebook.origins.get(("sources", name))
            raise DataError(f"the consents source '{name}' has no column '{missing[0]}'",
                            location=origin.location if origin else None,
                            hint="a consents source has columns " +
                                 ", ".join(REQUIRED_COLUMNS) + " (and optionally " +
                                 ", ".join(OPTIONAL_COLUMNS) + "); found " +
                                 ", ".join(available))
        assert source.contact is not None and source.time is not None
        contact = varchar(col(source.contact, "s"), catalog.type_of(name, source.contact))
        recorded = utc_time(col(source.time, "s"), catalog.engine_type(name, source.time),
                            engine.capabilities.text_time)

        def text(column: str) -> exp.Expr:
            if column not in available:
                return exp.cast(exp.null(), "VARCHAR")
            return exp.Trim(this=exp.cast(col(column, "s"), "VARCHAR"))

        def token(column: str) -> exp.Expr:
            return exp.Lower(this=text(column))

        rows = (exp.select(exp.alias_(contact, "contact_id"),
                           exp.alias_(token("purpose"), "purpose"),
                           exp.alias_(token("channel"), "channel"),
                           exp.alias_(token("status"), "status"),
                           exp.alias_(text("legal_basis"), "legal_basis"),
                           exp.alias_(text("jurisdiction"), "jurisdiction"),
                           exp.alias_(recorded, "recorded_at"),
                           exp.alias_(text("source"), "origin"))
                .from_(exp.alias_(exp.to_table(src(name)), "s"))
                .where(contact.copy().is_(exp.null()).not_()))
        wanted: list[list[str]] = []
        if contacts is not None:
            # The ids as one list parameter: one query on every engine, however many.
            rows = rows.where(exp.EQ(this=contact.copy(), expression=exp.Any(
                this=exp.paren(exp.Placeholder()))))
            wanted.append(sorted(set(contacts)))
        moment = col("recorded_at")
        query = (exp.select(exp.Star()).from_(rows.subquery("r"))
                 .where(moment.is_(exp.null()).not_())
                 .where(exp.LTE(this=moment.copy(), expression=timestamp(now))))
        try:
            fetched = engine.query(query, wanted)
        except RetainerError as exc:
            raise DataError(f"cannot read the consents source '{name}': "
                            f"{exc.problem.message}",
                            hint="check the source (its file or table) and its time column"
                            ) from None
    latest: dict[tuple[str, str, str | None], ConsentRecord] = {}
    for row in fetched:
        record = ConsentRecord(str(row[0]), str(row[1] or ""), row[2] or None,
                               str(row[3] or ""), row[4] or None, row[5] or None, row[6],
                               row[7] or None)
        key = (record.contact_id, record.purpose, record.channel)
        held = latest.get(key)
        if held is None or record.rank() > held.rank():
            latest[key] = record
    return list(latest.values())
