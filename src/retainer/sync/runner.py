"""`retainer sync`: validate, then plan and apply each sync while holding the store.

The store's lock is held from the first plan to the last confirmation, so two syncs (or a
sync and a run) never interleave their view of what a destination holds. State left by
syncs no longer in the rulebook is reported, never deleted here (see sync/prune.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from retainer.destinations import open_destination
from retainer.errors import RetainerError, did_you_mean
from retainer.project import Project, utc_now
from retainer.sync.apply import Clock, Opener, SyncResult, apply_sync
from retainer.sync.plan import SyncPlan, plan_sync
from retainer.sync.prune import StaleSync, stale
from retainer.sync.records import published


def selected(project: Project, names: Sequence[str] | None) -> list[str]:
    syncs = project.rulebook.syncs
    if not syncs:
        raise RetainerError("the rulebook declares no syncs",
                            hint="add a 'syncs:' section (see docs/sync.md)")
    for name in names or ():
        if name not in syncs:
            raise RetainerError(f"no sync named '{name}'",
                                hint=did_you_mean(name, syncs) or
                                "declared syncs: " + ", ".join(sorted(syncs)))
    return list(names) if names else list(syncs)


def check(project: Project) -> None:
    """Refuse to send anything from a rulebook that does not validate (purposes included)."""
    from retainer.checks import check_activation

    catalog = project.catalog()
    plan = project.plan(catalog=catalog)
    check_activation(project.rulebook, plan, catalog)


def run_syncs(project: Project, names: Sequence[str] | None = None, *, full: bool = False,
              dry_run: bool = False, clock: Clock = utc_now,
              opener: Opener = open_destination,
              on_plan: Callable[[SyncPlan], None] | None = None,
              on_result: Callable[[SyncResult], None] | None = None,
              on_stale: Callable[[list[StaleSync]], None] | None = None
              ) -> list[SyncPlan | SyncResult]:
    """Plan (and unless `dry_run`, apply) the named syncs, or all; returns one plan or
    result per sync, in rulebook order. `on_stale` hears of the state of syncs no longer
    in the rulebook, when there is some."""
    if not project.rulebook.syncs:
        _no_syncs(project)
    chosen = selected(project, names)
    check(project)
    outcomes: list[SyncPlan | SyncResult] = []
    with project.store() as store:
        results = project.results()
        try:
            run = published(results)
            for name in chosen:
                plan = plan_sync(project.rulebook, store, results, run, name, full=full,
                                 explain=dry_run)
                if on_plan is not None:
                    on_plan(plan)
                if dry_run:
                    outcomes.append(plan)
                    continue
                result = apply_sync(plan, project.rulebook, store, clock, opener)
                if on_result is not None:
                    on_result(result)
                outcomes.append(result)
        finally:
            results.close()
        left = stale(store, list(project.rulebook.syncs))
        if left and on_stale is not None:
            on_stale(left)
    return outcomes


def _no_syncs(project: Project) -> None:
    """A rulebook without syncs has nothing to send; say so, and whether the store still
    holds the state of syncs removed from it."""
    with project.store() as store:
        left = stale(store, ())
    hint = "add a 'syncs:' section (see docs/sync.md)"
    if left:
        hint += ("; the store still holds the state of removed syncs (" +
                 ", ".join(s.sync for s in left) + "): 'retainer sync --prune' deletes it")
    raise RetainerError("the rulebook declares no syncs", hint=hint)
