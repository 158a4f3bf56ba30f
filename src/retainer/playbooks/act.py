"""`retainer act`: plan every playbook against the latest run, then — unless it is a dry
run — write the plan to the ledger and dispatch what is pending.

The rulebook is validated first (as `retainer validate` does), so nothing is acted on by
a rulebook with a problem. Pending rows of playbooks no longer in the rulebook are retired
(a dry run only counts them): nothing could dispatch them any more. The act is recorded in
`acts` with its counts; a failure part way leaves every row either still pending (retried
next time) or final, never both.

Every source the act reads now (for validating, the contacts, the consents) is read through
one engine, opened at the first read and let go once the consents are read, before anything
is delivered: deliveries may take long, and on PostgreSQL the engine holds the work
schema's lock, which a run needs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from retainer.consent.sources import SourceReader, shared_sources
from retainer.errors import RetainerError, did_you_mean
from retainer.playbooks import ledger
from retainer.playbooks.dispatch import DispatchReport, consent_gate, dispatch
from retainer.playbooks.people import read_people
from retainer.playbooks.plan import FIRE, ActPlan
from retainer.playbooks.planner import build_plan
from retainer.playbooks.results import Results
from retainer.project import Project
from retainer.state import Store

Clock = Callable[[], datetime]


def consent_clock() -> datetime:
    """Now, to the microsecond: a consent recorded a fraction of a second before dispatch
    is in force at dispatch (a clock rounded to the second would not see it yet)."""
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class ActReport:
    plan: ActPlan
    dry_run: bool
    act_id: int | None = None
    written: int = 0                                    # new ledger rows
    dispatched: DispatchReport = field(default_factory=DispatchReport)
    retried: int = 0                                    # pending rows of earlier acts
    consent: dict[str, str] = field(default_factory=dict)   # dry run: key → preview
    rulebook_hash: str = ""                             # the rulebook that acted
    # Pending rows retired (a dry run: that would be) per playbook no longer in the rulebook.
    retired: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.dispatched.ok

    @property
    def stale(self) -> bool:
        """Whether the latest run was computed by another version of the rulebook."""
        return self.plan.rulebook_hash != self.rulebook_hash


def check_names(project: Project, names: Sequence[str]) -> None:
    known = list(project.rulebook.playbooks)
    for name in names:
        if name not in known:
            raise RetainerError(f"no playbook named '{name}'",
                                hint=did_you_mean(name, known) or (
                                    "playbooks: " + ", ".join(known) if known
                                    else "declare playbooks in the rulebook "
                                         "(docs/playbooks.md)"))


def validate(project: Project, sources: SourceReader) -> None:
    """The checks `retainer validate` makes, so a broken rulebook acts on nothing."""
    from retainer.checks import check_activation
    catalog = sources.catalog()
    plan = project.plan(catalog=catalog)
    check_activation(project.rulebook, plan, catalog)


def act(project: Project, *, dry_run: bool = False, playbooks: Sequence[str] = (),
        clock: Clock = consent_clock, check: bool = True) -> ActReport:
    """Plan, and unless `dry_run`, record and dispatch. `clock` gives the moment of each
    consent decision (and of the plan)."""
    rulebook = project.rulebook
    check_names(project, playbooks)
    if not rulebook.playbooks:
        raise RetainerError("the rulebook has no playbooks",
                            hint="declare them under 'playbooks:' (docs/playbooks.md)")
    with shared_sources(rulebook) as sources:
        if check:
            validate(project, sources)
        results = Results(project)
        try:
            with project.store() as store:
                plan = build_plan(rulebook, store, results, playbooks or None, clock())
                if dry_run:
                    return ActReport(plan, True, consent=_preview(project, plan, clock()),
                                     rulebook_hash=rulebook.content_hash,
                                     retired=ledger.orphaned(store, list(rulebook.playbooks)))
                return _apply(project, store, plan, clock, sources)
        finally:
            results.close()


def _apply(project: Project, store: Store, plan: ActPlan, clock: Clock,
           sources: SourceReader) -> ActReport:
    rulebook = project.rulebook
    act_id = ledger.begin_act(store, plan.as_of, plan.run_id, plan.planned_at,
                              plan.playbooks, rulebook.content_hash)
    counts: Counter[str] = Counter()
    try:
        retired = ledger.retire(store, list(rulebook.playbooks), act_id)
        counts["retired"] = sum(retired.values())
        recorded = plan.to_record()
        written = ledger.insert(store, recorded, act_id, plan.as_of, plan.planned_at,
                                rulebook.content_hash)
        pending = ledger.pending(store, rulebook.config.act.max_attempts, plan.playbooks)
        fresh = {i.key for i in plan.firing()}
        # The moment of dispatch first, then the sources as they are at that moment.
        now = clock()
        people = read_people(rulebook) if any(e.contact_id for e in pending) else {}
        gate = consent_gate(rulebook, now, pending,
                            {k: p.jurisdiction for k, p in people.items()})
        sources.close()   # every source is read: deliveries hold no engine (nor lock)
        report = dispatch(rulebook, store, pending, act_id, now, gate,
                          {k: p.email for k, p in people.items()})
        for item in recorded:
            counts[{"fire": "planned"}.get(item.outcome, item.outcome)] += 1
        for (_, status), count in report.counts.items():
            counts["failed" if status == "rejected" else status] += count
        kept = {i.key for i in recorded}
        counts["deferred"] = sum(1 for i in plan.items if i.outcome in ("cooldown", "capped")
                                 and i.key not in kept)
        status = "succeeded" if report.ok else "failed"
        ledger.finish_act(store, act_id, status, counts, clock(),
                          "; ".join(report.failures)[:2000] or None)
    except BaseException as exc:
        ledger.finish_act(store, act_id, "failed", counts, clock(), str(exc)[:2000]
                          or type(exc).__name__)
        raise
    retried = sum(1 for e in pending if e.action_key not in fresh)
    return ActReport(plan, False, act_id, written, report, retried,
                     rulebook_hash=rulebook.content_hash, retired=retired)


def _preview(project: Project, plan: ActPlan, now: datetime) -> dict[str, str]:
    """What the consent gate would say now about each firing item that reaches a person."""
    from retainer.consent.gate import ConsentGate
    reaching = [i for i in plan.items if i.outcome == FIRE and i.contact_id is not None]
    if not reaching:
        return {}
    people = read_people(project.rulebook)
    gate = ConsentGate.read(project.rulebook, now, {i.contact_id or "" for i in reaching},
                            {k: p.jurisdiction for k, p in people.items()})
    preview = {}
    for item in reaching:
        decision = gate.decide(item.contact_id or "", item.purpose, item.channel)
        preview[item.key] = ("allowed: " if decision.allowed else "suppressed: ") + \
            decision.reason
    return preview
