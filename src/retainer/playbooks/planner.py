"""Build an act's plan: for every playbook, its trigger occurrences, then for each the
checks in order — in the results? `when` holds? already in the ledger (or acted on before
history was rebuilt)? stopped by another playbook? in cooldown? held out? — and for each
action and recipient, the caps.

The plan reads the store, the published results and the contacts source, and writes
nothing: `--dry-run` prints exactly what `act` would then do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from retainer.errors import Problem, ValidationError
from retainer.playbooks import ledger
from retainer.playbooks.actions import Subject, drafts
from retainer.playbooks.conditions import ACCOUNT_PREFIX, Condition, compile_when, shown
from retainer.playbooks.keys import action_key, is_held_out
from retainer.playbooks.limits import Limits, effective_caps, horizon
from retainer.playbooks.occurrences import (
    Occurrence,
    condition_occurrence,
    describe,
    history_times,
    membership,
    occurrences,
    same_state,
    seen_before,
)
from retainer.playbooks.people import Person, by_account, read_people
from retainer.playbooks.plan import (
    CAPPED,
    COOLDOWN,
    DONE,
    FIRE,
    HELD_OUT,
    NO_MATCH,
    NO_RECIPIENT,
    STOPPED,
    ActPlan,
    Item,
)
from retainer.playbooks.results import Results
from retainer.privacy.tombstones import Forgotten
from retainer.rulebook.expressions import ExpressionError
from retainer.rulebook.loader import Rulebook
from retainer.rulebook.playbook_models import (
    CONDITION_COOLDOWN,
    MessageAction,
    Playbook,
    TaskAction,
    Trigger,
)
from retainer.state import Store

# What an occurrence acted on before history was rebuilt was, by trigger kind.
_STATE_WORD = {"enter": "entry", "exit": "exit", "in": "stay"}


@dataclass(frozen=True)
class _Context:
    rulebook: Rulebook
    results: Results
    as_of: datetime
    salt: str
    conditions: dict[str, Condition]
    stops: dict[str, list[tuple[str, set[str]]]]   # playbook → (stopper, ids it holds for)
    people: dict[str, Person]
    contacts: dict[str, list[Person]]
    times: list[datetime]                          # the as_of of every run in history


def cooldown_of(playbook: Playbook) -> timedelta | None:
    """The playbook's cooldown; one with only `when` gets CONDITION_COOLDOWN by default."""
    if playbook.cooldown is not None:
        return playbook.cooldown
    return CONDITION_COOLDOWN if playbook.on is None else None


def build_plan(rulebook: Rulebook, store: Store, results: Results,
               selected: Sequence[str] | None, planned_at: datetime) -> ActPlan:
    names = list(selected) if selected else list(rulebook.playbooks)
    as_of = results.run.as_of
    conditions = _conditions(rulebook, results, as_of)
    stops = _stop_states(rulebook, results, conditions, names)
    people: dict[str, Person] = {}
    if any(_needs_people(rulebook.playbooks[n]) for n in names):
        extra = sorted({f for n in names for a in rulebook.playbooks[n].actions
                        if isinstance(a.body, MessageAction) for f in a.body.contact_fields})
        # A forgotten person who reappears in the sources is nobody to a playbook.
        forgotten = Forgotten.of(store)
        people = {k: p for k, p in read_people(rulebook, extra).items()
                  if not forgotten(p.contact_id, p.email)}
    ctx = _Context(rulebook, results, as_of, rulebook.config.act.holdout_salt
                   or rulebook.config.name, conditions, stops, people, by_account(people),
                   history_times(store))
    caps = rulebook.config.act.caps
    longest = horizon([cooldown_of(p) for p in rulebook.playbooks.values()] + [
        c.per for p in rulebook.playbooks.values()
        for c in (effective_caps(p, caps).account, effective_caps(p, caps).contact) if c])
    limits = Limits.read(store, as_of - longest)
    items: list[Item] = []
    for name in names:
        items += _playbook_items(ctx, store, name, limits)
    return ActPlan(as_of, results.run.run_id, results.run.rulebook_hash, tuple(names),
                   tuple(items), planned_at)


def _needs_people(playbook: Playbook) -> bool:
    return playbook.entity == "contact" or any(
        isinstance(a.body, MessageAction) or (isinstance(a.body, TaskAction)
                                              and a.body.owner_role is not None)
        for a in playbook.actions)


def _conditions(rulebook: Rulebook, results: Results, as_of: datetime
                ) -> dict[str, Condition]:
    found: dict[str, Condition] = {}
    problems: list[Problem] = []
    for name, playbook in rulebook.playbooks.items():
        if playbook.when is None:
            continue
        try:
            found[name] = compile_when(playbook.when, results.scope(playbook.entity), as_of)
        except ExpressionError as exc:
            origin = rulebook.origin("playbooks", name)
            problems.append(Problem(f"playbook '{name}': {exc.message}",
                                    origin.inside(("when",), exc.offset),
                                    (exc.hint or "") + "; the published results may come "
                                    "from an older rulebook: run 'retainer run' first"))
    if problems:
        raise ValidationError(problems)
    return found


def state_holds(rulebook: Rulebook, results: Results, conditions: dict[str, Condition],
                name: str) -> set[str]:
    """Entities for which a playbook's trigger state holds now: in its enter / in segment
    (for exit: out of it), and its `when`."""
    playbook = rulebook.playbooks[name]
    holding: set[str] | None = None
    if playbook.on is not None:
        dimension, segment = membership(playbook.on.segment)
        inside = results.in_segment(playbook.entity, dimension, segment)
        if playbook.on.kind == "exit":
            inside = results.ids(playbook.entity) - inside
        holding = inside
    if name in conditions:
        held = results.holding(playbook.entity, conditions[name])
        holding = held if holding is None else holding & held
    return holding or set()


def _stop_states(rulebook: Rulebook, results: Results, conditions: dict[str, Condition],
                 names: Sequence[str]) -> dict[str, list[tuple[str, set[str]]]]:
    stops: dict[str, list[tuple[str, set[str]]]] = {}
    cache: dict[str, set[str]] = {}
    for stopper, playbook in rulebook.playbooks.items():
        for target in playbook.stops:
            if target not in names:
                continue
            if stopper not in cache:
                cache[stopper] = state_holds(rulebook, results, conditions, stopper)
            stops.setdefault(target, []).append((stopper, cache[stopper]))
    return stops


def _playbook_items(ctx: _Context, store: Store, name: str, limits: Limits) -> list[Item]:
    playbook = ctx.rulebook.playbooks[name]
    level = playbook.entity
    condition = ctx.conditions.get(name)
    holding = ctx.results.holding(level, condition) if condition is not None else None
    if playbook.on is not None:
        found = occurrences(store, playbook.on, level, ctx.as_of)
    else:
        found = [condition_occurrence(e, ctx.as_of) for e in sorted(holding or ())]
    rows = ctx.results.rows(level, {o.entity_id for o in found})
    done = ledger.done_occurrences(store, name, min(o.at for o in found)) if found else set()
    acted = _acted_before_rebuild(store, name, playbook.on, found, done, ctx.times)
    items: list[Item] = []
    for occurrence in found:
        row = rows.get(occurrence.entity_id)
        why = occurrence.why
        if condition is not None and row is not None:
            values = ", ".join(f"{c.replace(ACCOUNT_PREFIX, 'account.', 1)} = "
                               f"{shown(row.get(c))}" for c in condition.columns)
            why = f"{why}; {values}" if playbook.on is not None else values
        items += _occurrence_items(ctx, name, playbook, occurrence, row, why,
                                   holding, done, limits, acted.get(occurrence))
    return items


def _acted_before_rebuild(store: Store, name: str, trigger: Trigger | None,
                          found: Sequence[Occurrence],
                          done: set[tuple[str, str, str, datetime]],
                          times: Sequence[datetime]) -> dict[Occurrence, list[ledger.Acted]]:
    """For each occurrence not in the ledger as it is, the rows that acted on its stay or
    absence under a history `backfill --replace` has since rebuilt (see
    occurrences.same_state). Ordinary history has none: its occurrences stay put."""
    fresh = [o for o in found if (name, o.entity_id, o.kind, o.at) not in done]
    if trigger is None or not fresh:
        return {}
    starts = [seen_before(times, o.began) if o.began is not None else None for o in fresh]
    since = None if None in starts else min(s for s in starts if s is not None)
    rows = ledger.acted_before_rebuild(store, name, trigger.kind, trigger.segment, since)
    matched: dict[Occurrence, list[ledger.Acted]] = {}
    for occurrence in fresh:
        same = [r for r in rows.get(occurrence.entity_id, [])
                if same_state(occurrence, trigger, r.occurrence, times)]
        if same:
            matched[occurrence] = same
    return matched


def _occurrence_items(ctx: _Context, name: str, playbook: Playbook, occurrence: Occurrence,
                      row: dict[str, Any] | None, why: str, holding: set[str] | None,
                      done: set[tuple[str, str, str, datetime]], limits: Limits,
                      acted: list[ledger.Acted] | None = None) -> list[Item]:
    level, entity = playbook.entity, occurrence.entity_id
    account = entity if level == "account" else (
        str(row.get(ctx.results.account_of_contact)) if row else None)

    def item(index: int, outcome: str, why_not: str | None, kind: str,
             contact: str | None = None, **extra: Any) -> Item:
        return Item(action_key(name, entity, occurrence.kind, occurrence.at, index, contact),
                    name, level, entity, account, contact, occurrence.kind,
                    occurrence.segment, occurrence.at, index, kind, extra.pop("destination",
                                                                              None),
                    extra.pop("stream", None), playbook.purpose, extra.pop("channel", None),
                    outcome, why, why_not, **extra)

    def every(outcome: str, why_not: str | None, **extra: Any) -> list[Item]:
        return [item(i, outcome, why_not, a.kind, **extra)
                for i, a in enumerate(playbook.actions)]

    base = {"playbook": name, "account_id": account, "trigger": occurrence.kind,
            "segment": occurrence.segment, "occurrence": occurrence.at.isoformat(),
            "as_of": ctx.as_of.isoformat(), "why": why}
    if row is None:
        return every(NO_MATCH, f"{level} is not in the latest results")
    if holding is not None and entity not in holding:
        return every(NO_MATCH, f"when does not hold ({playbook.when})")
    if (name, entity, occurrence.kind, occurrence.at) in done:
        return every(DONE, "already in the ledger")
    if acted:
        # Recorded as stopped, so the next act finds this occurrence in the ledger as it is.
        state = _STATE_WORD[occurrence.kind]
        by_index = {r.action_index: r.action_key for r in reversed(acted)}
        return [item(i, STOPPED, f"already acted on this {state} before history was "
                     f"rebuilt: action {by_index.get(i, acted[0].action_key)}", a.kind,
                     payload={**base, "acted_as": by_index.get(i, acted[0].action_key)})
                for i, a in enumerate(playbook.actions)]
    for stopper, held in ctx.stops.get(name, []):
        stopped = entity in held or (level == "contact" and account in held
                                     and ctx.rulebook.playbooks[stopper].entity == "account")
        if stopped:
            on = ctx.rulebook.playbooks[stopper].on
            state = f" ({describe(on.segment)})" if on is not None else ""
            return every(STOPPED, f"stopped by {stopper}{state}",
                         payload={**base, "stopped_by": stopper})
    blocked = limits.cooldown(name, entity, cooldown_of(playbook), ctx.as_of)
    if blocked:
        return every(COOLDOWN, blocked)
    if is_held_out(playbook.holdout, ctx.salt, name, entity):
        held_items = every(HELD_OUT, f"in the {playbook.holdout:.0%} holdout group",
                           holdout=True, payload=base)
        for held_item in held_items:
            limits.note(held_item, ctx.as_of)
        return held_items
    person = ctx.people.get(entity) if level == "contact" else None
    subject = Subject(level, entity, account, row, person,
                      ctx.contacts.get(account or "", []))
    caps = effective_caps(playbook, ctx.rulebook.config.act.caps)
    items: list[Item] = []
    for index, action in enumerate(playbook.actions):
        for draft in drafts(name, action, subject, ctx.as_of):
            contact = draft.contact.contact_id if draft.contact else None
            extra: dict[str, Any] = {"destination": draft.destination, "stream": draft.stream,
                     "channel": draft.channel, "summary": draft.summary,
                     "payload": {**base, "action": action.kind, **draft.payload},
                     "due_at": draft.due_at}
            if draft.problem:
                items.append(item(index, NO_RECIPIENT, draft.problem, action.kind, **extra))
                continue
            capped = limits.account_cap(caps.account, account, (name, entity, occurrence.at,
                                                                index), ctx.as_of)
            if capped is None and action.kind == "message":
                capped = limits.contact_cap(caps.contact, contact, ctx.as_of)
            result = item(index, CAPPED if capped else FIRE, capped, action.kind, contact,
                          **extra)
            if not capped:
                limits.note(result, ctx.as_of)
            items.append(result)
    return items
