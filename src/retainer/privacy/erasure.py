"""`retainer forget`: plan what a person's erasure removes, then remove it everywhere.

Order matters for a failure or a kill half-way: the tombstones are written first, in the same
transaction that deletes the person's history and anonymises the ledger and decision log,
so from that moment every run suppresses them; then the published results and exports are
cleaned, and the deletion propagated to destinations. Last, while both are still held,
the state store and the published results are rewritten so the deleted rows leave no bytes
in them (see `compaction`). Every step can run again without harm, so forgetting the same
person again finishes whatever an earlier attempt left undone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlglot import exp

from retainer.engines.duckdb import DuckDBEngine
from retainer.errors import RetainerError
from retainer.privacy import compaction, outputs
from retainer.privacy.compaction import Compaction
from retainer.privacy.propagation import Delivered, Outcome, propagate
from retainer.privacy.scrub import longest_first, scrub, scrub_free_text
from retainer.privacy.subjects import Subject, contacts_source, email_source, read_contacts
from retainer.privacy.tombstones import (
    Tombstone,
    normal_email,
    store_salt,
    subject_hash,
    tombstones,
    write_tombstone,
)
from retainer.project import Project, utc_now
from retainer.state import Store
from retainer.sync.erasure import removed_holding


@dataclass(frozen=True)
class ErasurePlan:
    """What forgetting a person would remove; printed by `--dry-run`, applied by `forget`."""

    subject: Subject
    memberships: int                  # contact-level membership intervals
    ledger: int                       # action ledger rows about them
    decisions: int                    # decision log entries about them
    sync_records: dict[str, int]      # per sync of contacts: records it delivered
    removed_sync_records: dict[str, int]  # the same, per sync no longer in the rulebook
    deliveries: dict[str, int]        # per destination: actions delivered with their data
    results: int                      # rows in the published contact tables
    exports: tuple[Path, ...]         # exported files that are written again
    forgotten_before: tuple[Tombstone, ...] = ()

    @property
    def pending(self) -> list[Delivered]:
        """Deliveries an earlier attempt could not delete, kept with its tombstones."""
        found: dict[tuple[str, str, str], Delivered] = {}
        for stone in self.forgotten_before:
            for item in stone.propagated.get("pending", []):
                delivered = Delivered(*item)
                found[(delivered.destination, delivered.stream, delivered.key)] = delivered
        return list(found.values())

    def lines(self) -> list[str]:
        """The plan in words, one line per place."""
        records = sum(self.sync_records.values())
        per_sync = ", ".join(f"{s}: {n}" for s, n in sorted(self.sync_records.items()))
        lines = [_count(self.memberships, "membership interval") + " in history",
                 _count(self.ledger, "action ledger row") + " (anonymised: the action stays)",
                 _count(self.decisions, "decision log entry", "decision log entries")
                 + " (anonymised: the decision stays)",
                 _count(self.results, "contact") + " in the published results",
                 _count(len(self.exports), "exported file") + " written again without them",
                 _count(records, "synced record") + " deleted at their destinations"
                 + (f" ({per_sync})" if records else "")]
        actions = sum(self.deliveries.values())
        if actions:
            per_destination = ", ".join(f"{d}: {n}" for d, n in sorted(self.deliveries.items()))
            lines.append(_count(actions, "delivered action") + " deleted at their "
                         f"destinations ({per_destination})")
        removed = sum(self.removed_sync_records.values())
        if removed:
            per_sync = ", ".join(f"{s}: {n}" for s, n in sorted(
                self.removed_sync_records.items()))
            lines.append(_count(removed, "synced record") + " delivered by syncs no longer in "
                         f"the rulebook ({per_sync}): deleted where their destination is "
                         "still declared, reported otherwise")
        if self.pending:
            lines.append(_count(len(self.pending), "delivered action")
                         + " left to delete from an earlier attempt")
        return lines


@dataclass(frozen=True)
class ErasureReport:
    plan: ErasurePlan
    outcomes: list[Outcome] = field(default_factory=list)
    compaction: Compaction | None = None     # None: skipped (--no-compact)

    @property
    def complete(self) -> bool:
        return all(o.ok for o in self.outcomes)


def _count(number: int, one: str, many: str | None = None) -> str:
    return f"{number:,} {one if number == 1 else many or one + 's'}"


def plan_erasure(project: Project, contact: str | None = None, email: str | None = None
                 ) -> ErasurePlan:
    """Find the person and count what holds them. Raises RetainerError when nobody matches."""
    if (contact is None) == (email is None):
        raise RetainerError("say whom to forget: --contact ID or --email ADDRESS (one of them)")
    rulebook = project.rulebook
    if email is not None:
        email_source(rulebook)  # a clear error when no email column is declared
        rows = read_contacts(rulebook, emails=[email])
        subject = Subject(tuple(sorted({i for i, _ in rows})), (normal_email(email),))
    else:
        assert contact is not None
        rows = read_contacts(rulebook, ids=[contact.strip()])
        subject = Subject((contact.strip(),), tuple(sorted({e for _, e in rows if e})))
    with project.store() as store:
        salt = store_salt(store)
        before = tombstones(store, _hashes(salt, subject)) if salt else []
        memberships, ledger, decisions = _store_counts(store, subject.contact_ids)
        synced = _synced(store, project, subject.contact_ids)
        removed = removed_holding(rulebook, store, subject.contact_ids, "contact") \
            if subject.contact_ids else {}
        deliveries = _deliveries(store, subject.contact_ids)
    results, exports = _published(project, subject.contact_ids)
    plan = ErasurePlan(subject, memberships, ledger, decisions, synced, removed, deliveries,
                       results, exports, tuple(before))
    if not rows and not before and not (memberships or ledger or decisions or results
                                         or any(synced.values()) or removed):
        what = f"contact '{contact}'" if contact is not None else f"email address '{email}'"
        where = contacts_source(rulebook)
        raise RetainerError(f"no {what} in the contacts source"
                            + (f" '{where[0]}'" if where else "")
                            + ", the published results or the state store",
                            hint="check the spelling; ids are compared exactly, addresses "
                                 "without case")
    return plan


def apply_erasure(project: Project, plan: ErasurePlan, compact: bool = True) -> ErasureReport:
    """Forget the person everywhere (see the module's docstring for the order); with
    `compact` false the databases keep the deleted bytes until a later compaction."""
    subject = plan.subject
    ids = subject.contact_ids
    now = utc_now()
    done: Compaction | None = None
    # The results are opened first: a run in progress holds them, and then nothing changes.
    engine = DuckDBEngine(project.output_database) \
        if project.output_database.exists() else None
    try:
        with project.store() as store:
            compaction.mark_pending(project)
            with store.backend.transaction():
                salt = store_salt(store, create=True)
                assert salt is not None
                if ids:
                    store.backend.execute(exp.delete("memberships", where=exp.and_(
                        exp.column("level").eq(exp.Literal.string("contact")),
                        _among("entity_id", ids))))
                actions, secrets = _anonymise_actions(store, subject, salt)
                delivered = [*plan.pending, *actions]
                # Errors and notes a destination filled with their details go too.
                scrub_free_text(store, secrets)
                # What was delivered with their data is kept with the tombstones until it
                # is deleted at its destination, so a later attempt can finish the job.
                for digest, kind in _subjects(salt, subject):
                    write_tombstone(store, digest, kind, now,
                                    _summary(plan, [], delivered, finished=False))
            if engine is not None:
                outputs.remove_rows(engine, project.rulebook.key_column("contact"), ids)
                outputs.rewrite_exports(engine, project.export_dir)
            _forget_in_engine(project, ids)
            results = propagate(project.rulebook, store, ids, delivered)
            left = [o.delivered for o in results if not o.ok and o.delivered is not None]
            _record(store, salt, plan, results, left, finished=True)
            if compact:
                done = compaction.compact(project, store, engine)
    finally:
        if engine is not None:
            engine.close()
    return ErasureReport(plan, results, done)


# --- the store ----------------------------------------------------------------------------

def _hashes(salt: str, subject: Subject) -> list[str]:
    return [digest for digest, _ in _subjects(salt, subject)]


def _subjects(salt: str, subject: Subject) -> list[tuple[str, Any]]:
    return [*((subject_hash(salt, i), "contact") for i in subject.contact_ids),
            *((subject_hash(salt, e), "email") for e in subject.emails)]


def _among(column: str, ids: Sequence[str]) -> exp.Expr:
    return exp.column(column).isin(*(exp.Literal.string(i) for i in ids))


def _rows(store: Store, table: str, condition: exp.Expr) -> int:
    query = exp.select(exp.Count(this=exp.Star())).from_(table).where(condition)
    return int(store.backend.fetch(query)[0][0])


def _store_counts(store: Store, ids: Sequence[str]) -> tuple[int, int, int]:
    if not ids:
        return 0, 0, 0
    contact_level = exp.column("level").eq(exp.Literal.string("contact"))
    memberships = _rows(store, "memberships", exp.and_(contact_level, _among("entity_id", ids)))
    ledger = _rows(store, "ledger", _about(ids))
    decisions = _rows(store, "decisions", _among("contact_id", ids))
    return memberships, ledger, decisions


def _about(ids: Sequence[str]) -> exp.Expr:
    """Ledger rows about the contacts: as recipients, or as the entity of a contact
    playbook."""
    return exp.or_(_among("contact_id", ids), exp.and_(
        exp.column("level").eq(exp.Literal.string("contact")), _among("entity_id", ids)))


def _deliveries(store: Store, ids: Sequence[str]) -> dict[str, int]:
    from retainer.playbooks.erasure import MAY_BE_DELIVERED
    if not ids:
        return {}
    query = (exp.select("destination", exp.Count(this=exp.Star())).from_("ledger")
             .where(_about(ids)).where(exp.column("destination").is_(exp.null()).not_())
             .where(exp.column("status").isin(*(exp.Literal.string(s)
                                                 for s in MAY_BE_DELIVERED)))
             .group_by("destination"))
    return {str(d): int(n) for d, n in store.backend.fetch(query)}


def _synced(store: Store, project: Project, ids: Sequence[str]) -> dict[str, int]:
    """Records each sync of contacts holds at its destination for the ids."""
    syncs = [n for n, s in project.rulebook.syncs.items() if s.entity == "contact"]
    if not ids or not syncs:
        return {}
    return {name: _rows(store, "sync_state", exp.and_(
        exp.column("sync").eq(exp.Literal.string(name)), _among("entity_id", ids)))
        for name in syncs}


def _anonymise_actions(store: Store, subject: Subject, salt: str
                       ) -> tuple[list[Delivered], list[str]]:
    """The ledger and decision log keep each action and decision, with the person's id
    replaced by their tombstone; what was delivered with their data comes back, and every
    value of theirs the ledger held (to scrub from free text)."""
    from retainer.playbooks.erasure import forget_contact
    delivered: list[Delivered] = []
    secrets = [*subject.contact_ids, *subject.emails]
    for contact_id in subject.contact_ids:
        tombstone = subject_hash(salt, contact_id)
        sent, found = forget_contact(store, contact_id, tombstone, subject.emails)
        # The delete names the action by its key and the person by their tombstone.
        delivered += [Delivered(destination, stream, key, tombstone)
                      for destination, stream, key in sent]
        secrets += found
    return delivered, longest_first(secrets)


def _summary(plan: ErasurePlan, outcomes: Sequence[Outcome], pending: Sequence[Delivered],
             finished: bool) -> dict[str, Any]:
    """What a tombstone records of its erasure: counts and outcomes, never the person (a
    delivery left to delete keeps its action key and the tombstone)."""
    earlier = plan.forgotten_before[0].propagated if plan.forgotten_before else {}
    removed = {"memberships": plan.memberships, "ledger": plan.ledger,
               "decisions": plan.decisions, "results": plan.results}
    # Forgetting again adds to what the first erasure removed.
    for name, count in (earlier.get("removed") or {}).items():
        if isinstance(count, int) and name in removed:
            removed[name] += count
    return {"complete": finished and not pending and all(o.ok for o in outcomes),
            "removed": removed,
            "destinations": [*(earlier.get("destinations") or []),
                             *(_scrubbed(o.summary(), plan.subject) for o in outcomes)],
            "pending": [[d.destination, d.stream, d.key, d.entity_id] for d in pending]}


def _scrubbed(summary: dict[str, Any], subject: Subject) -> dict[str, Any]:
    """An outcome as a tombstone keeps it: a destination's error message may quote a
    record, so the person's ids and addresses are taken out of it."""
    cleaned: dict[str, Any] = scrub(summary, longest_first([*subject.contact_ids,
                                                             *subject.emails]))
    return cleaned


def _record(store: Store, salt: str, plan: ErasurePlan, outcomes: Sequence[Outcome],
            pending: Sequence[Delivered], finished: bool) -> None:
    with store.backend.transaction():
        for digest, kind in _subjects(salt, plan.subject):
            write_tombstone(store, digest, kind, utc_now(),
                            _summary(plan, outcomes, pending, finished))


# --- published results ------------------------------------------------------------------

def _forget_in_engine(project: Project, ids: Sequence[str]) -> None:
    """A compute engine other than the embedded one may keep the results and copies of the
    sources (PostgreSQL's work schema): the person leaves those too."""
    if not ids or project.rulebook.config.engine == "duckdb":
        return
    from retainer.engines import create_engine
    compute = create_engine(project.rulebook)
    try:
        compute.forget_contacts(ids, project.rulebook.key_column("contact"))
    finally:
        compute.close()


def _published(project: Project, ids: Sequence[str]) -> tuple[int, tuple[Path, ...]]:
    if not project.output_database.exists():
        return 0, ()
    engine = project.results()
    try:
        count = outputs.count_rows(engine, project.rulebook.key_column("contact"), ids)
    finally:
        engine.close()
    return count, tuple(outputs.exported_files(project.export_dir)) if count else ()
