"""Apply a sync plan: deliver batch by batch, recording each batch only once confirmed.

Failure policy:
* a retryable failure (destination down, timing out, answering 5xx) after the
  destination's own retries: the batch goes to the dead-letter store and the sync stops —
  sending more would only wait out the same failure; the rest stays pending;
* a refusal (4xx, a bad row): the batch is split to find the refused records, which go to
  the dead-letter store, and the sync goes on with the others — except for `changes`, whose
  messages must arrive in order, so it stops there.
Either way the next sync sends everything missing (nothing failed is in `sync_state`), and
a record delivered twice is harmless: every destination takes records idempotently by key.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from retainer.destinations import open_destination
from retainer.destinations.base import DeliveryError, Destination, Record
from retainer.errors import RetainerError
from retainer.rulebook.loader import Rulebook
from retainer.state import Store
from retainer.sync import state
from retainer.sync.plan import SyncPlan

Clock = Callable[[], datetime]
Opener = Callable[[str, Rulebook], Destination]


@dataclass
class SyncResult:
    plan: SyncPlan
    sync_id: int
    status: str = "succeeded"            # succeeded | failed
    upserted: int = 0
    deleted: int = 0
    messages: int = 0
    failed: int = 0                      # records now in the dead-letter store
    pending: int = 0                     # records not attempted because the sync stopped
    error: str | None = None
    hint: str | None = None
    attempts: int = 0                    # tries of the last failed batch
    batches: int = 0                     # batches the destination confirmed

    @property
    def counts(self) -> dict[str, int]:
        return {"upserted": self.upserted, "deleted": self.deleted, "messages": self.messages,
                "failed": self.failed, "pending": self.pending}


@dataclass
class _Progress:
    result: SyncResult
    stop: bool = False


def apply_sync(plan: SyncPlan, rulebook: Rulebook, store: Store, clock: Clock,
               opener: Opener = open_destination) -> SyncResult:
    """Deliver the plan and record it; never raises for a destination's failure (the
    result says what failed), only for the store's own errors or an interrupt."""
    records = plan.records
    sync_id = state.begin(store, plan.name, plan.destination, plan.sync.mode, plan.stream,
                          plan.run.run_id, clock())
    result = SyncResult(plan, sync_id)
    try:
        # Dead letters for records no longer pending are moot (the entity changed again).
        state.drop_dead_letters(store, plan.name,
                                plan.dead_letters.keys() - {r.key for r in records})
        if records:
            _deliver_all(plan, rulebook, store, clock, opener, records, result)
    except BaseException as exc:
        state.finish(store, sync_id, "interrupted" if isinstance(exc, KeyboardInterrupt)
                     else "failed", result.counts, str(exc) or type(exc).__name__, clock())
        raise
    cursor = plan.cursor_to if result.status == "succeeded" else None
    state.finish(store, sync_id, result.status, result.counts, result.error, clock(),
                 cursor=None if cursor is None else (plan.name, cursor))
    return result


def _deliver_all(plan: SyncPlan, rulebook: Rulebook, store: Store, clock: Clock,
                 opener: Opener, records: Sequence[Record], result: SyncResult) -> None:
    try:
        destination = opener(plan.destination, rulebook)
    except RetainerError as exc:
        _fail(result, exc, pending=len(records))
        return
    progress = _Progress(result)
    try:
        size = max(1, destination.batch_size)
        for start in range(0, len(records), size):
            if progress.stop:
                result.pending += len(records) - start
                break
            _send(plan, destination, store, clock, records[start:start + size], progress)
    finally:
        destination.close()


def _send(plan: SyncPlan, destination: Destination, store: Store, clock: Clock,
          batch: Sequence[Record], progress: _Progress) -> None:
    result = progress.result
    try:
        destination.deliver(plan.stream, batch)
    except DeliveryError as exc:
        ordered = plan.sync.mode == "changes"
        if not exc.retryable and len(batch) > 1 and not ordered:
            middle = len(batch) // 2   # find the records the destination refuses
            for half in (batch[:middle], batch[middle:]):
                if progress.stop:
                    result.pending += len(half)
                else:
                    _send(plan, destination, store, clock, half, progress)
            return
        state.dead_letter(store, plan.name, batch, exc.problem.message, exc.attempts,
                          result.sync_id, clock(), plan.dead_letters)
        _fail(result, exc)
        result.failed += len(batch)
        progress.stop = progress.stop or exc.retryable or ordered
        return
    state.confirm(store, plan.name, batch, plan.hashes, plan.changed_at, clock())
    result.batches += 1
    for record in batch:
        if plan.sync.mode == "changes":
            result.messages += 1
        elif record.op == "delete":
            result.deleted += 1
        else:
            result.upserted += 1


def _fail(result: SyncResult, exc: RetainerError, pending: int = 0) -> None:
    result.status = "failed"
    result.error = exc.problem.message
    result.hint = exc.problem.hint
    result.pending += pending
    if isinstance(exc, DeliveryError):
        result.attempts = exc.attempts
