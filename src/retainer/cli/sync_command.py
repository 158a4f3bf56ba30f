"""`retainer sync [NAME]`: send what changed to the destinations; `--dry-run` shows the
plan, `--log` the sync log and `--dead-letters` the records that could not be delivered;
`--prune` deletes the state of syncs removed from the rulebook.

Exit codes: 0 every sync delivered · 1 a sync failed (its records wait in the dead-letter
store and go out with the next sync) · 2 the rulebook is invalid (nothing is sent).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.text import Text

from retainer.cli.common import STATUS_STYLE, ProjectOption, console, errors, friendly, indented
from retainer.cli.main import app
from retainer.cli.render import value

_STATUS = {**STATUS_STYLE, "running": "cyan"}


@app.command()
@friendly
def sync(name: Annotated[list[str] | None, typer.Argument(
             help="the syncs to run (default: all)", show_default=False)] = None,
         project: ProjectOption = Path("."),
         dry_run: Annotated[bool, typer.Option(
             "--dry-run", help="show what would be sent and why; send nothing")] = False,
         full: Annotated[bool, typer.Option(
             "--full", help="send everything again, not only what changed")] = False,
         log: Annotated[bool, typer.Option("--log", help="show the sync log")] = False,
         dead_letters: Annotated[bool, typer.Option(
             "--dead-letters", help="list records that could not be delivered")] = False,
         prune: Annotated[bool, typer.Option(
             "--prune", help="delete the state of syncs no longer in the rulebook (NAME: "
                             "only those); with --dry-run, list it")] = False,
         limit: Annotated[int, typer.Option(min=0, help="rows listed by --log, --dry-run and "
                                                 "--dead-letters")] = 20) -> None:
    """Send the latest results to the destinations: only what changed since the last sync."""
    from retainer.project import Project
    loaded = Project(project)
    if prune:
        _prune(loaded, name or [], dry_run)
        return
    if log or dead_letters:
        _show_store(loaded, name, log, limit)
        return
    from retainer.sync.runner import run_syncs
    outcomes = run_syncs(loaded, name, full=full, dry_run=dry_run,
                         on_plan=(lambda plan: _print_plan(plan, limit)) if dry_run else None,
                         on_result=_print_result, on_stale=_print_stale)
    _notes(loaded.rulebook, [getattr(o, "plan", o) for o in outcomes])
    if any(getattr(outcome, "status", "succeeded") != "succeeded" for outcome in outcomes):
        raise typer.Exit(1)


def _notes(rulebook: Any, plans: list[Any]) -> None:
    """What deserves a word even when everything was delivered."""
    if plans and plans[0].run.rulebook_hash not in (None, rulebook.content_hash):
        errors.print("[yellow]note:[/] the published results were computed by another version "
                     "of the rulebook; 'retainer run' publishes the current one")
    unsigned = sorted({p.destination for p in plans if p.kind == "webhook"
                       and rulebook.destinations[p.destination].secret_env is None})
    for destination in unsigned:
        errors.print(f"[yellow]note:[/] destination '{destination}' sends unsigned requests; "
                     "set 'secret_env' so receivers can verify them (docs/sync.md)")


def _print_stale(left: list[Any]) -> None:
    """State of syncs no longer in the rulebook: reported, never pruned unasked (a sync may
    be commented out for a day)."""
    for sync in left:
        errors.print(f"[yellow]note:[/] stale sync state for '{escape(sync.sync)}': "
                     f"{sync.describe()} — the sync is no longer in the rulebook",
                     highlight=False)
    errors.print("    'retainer sync --prune' deletes that state; put the sync back and it "
                 "carries on where it stopped", highlight=False)


def _prune(loaded: Any, names: list[str], dry_run: bool) -> None:
    from retainer.sync.prune import chosen, prune
    declared = list(loaded.rulebook.syncs)
    with loaded.store() as store:
        found = chosen(store, declared, names) if dry_run else prune(store, declared, names)
    if not found:
        console.print("nothing to prune: every sync the store knows is in the rulebook")
        return
    verb = "would prune" if dry_run else "pruned"
    for sync in found:
        console.print(f"{verb} stale sync state for '{escape(sync.sync)}': "
                      f"{sync.describe()}", highlight=False)
    records = sum(s.records for s in found)
    letters = sum(s.dead_letters for s in found)
    summary = (f"{len(found)} sync(s), {records:,} record(s), {letters:,} dead letter(s); "
               "the sync log keeps their history, and their destinations keep what they "
               "were sent")
    console.print(f"[dim]{summary}[/]" if dry_run else f"[green]✓[/] {summary}",
                  highlight=False)


def _print_note(plan: Any) -> None:
    """Why a sync sends more than the last one left (history rebuilt behind its cursor)."""
    if plan.note:
        errors.print(f"[yellow]note:[/] {escape(plan.note)}", highlight=False)


def _print_plan(plan: Any, limit: int) -> None:
    _print_note(plan)
    counts = _plan_counts(plan)
    console.print(f"[bold]{plan.name}[/] → {plan.destination} ({plan.kind}) "
                  f"{escape(plan.stream)}, {plan.sync.mode}: {counts}")
    shown = list(plan.records)[:limit]
    for record in shown:
        if record.op == "delete":
            console.print(f"  [red]delete[/] {escape(record.key)}", highlight=False)
        elif plan.sync.mode == "changes":
            payload = record.payload
            console.print(f"  [cyan]{escape(record.entity_id)}[/] {payload['dimension']}: "
                          f"{value(payload['from'])} → {value(payload['to'])} "
                          f"[dim]({payload['as_of']})[/]", highlight=False)
        else:
            differences = [d for d in plan.differences(record) if d[2] != record.key]
            changed = ", ".join(f"{k}: {value(a)} → {value(b)}" if a is not None else
                                f"{k} = {value(b)}" for k, a, b in differences[:6])
            changed += " …" if len(differences) > 6 else ""
            verb = "update" if record.key in plan.previous else "add"
            console.print(f"  [green]{verb}[/] {escape(record.key)} [dim]{escape(changed)}[/]",
                          highlight=False)
    hidden = len(plan.records) - len(shown)
    if hidden > 0:
        console.print(f"  [dim]… and {hidden:,} more (--limit)[/]")


def _plan_counts(plan: Any) -> str:
    parts = []
    if plan.sync.mode == "changes":
        parts.append(f"{len(plan.messages):,} change message(s) to send")
    else:
        parts.append(f"{len(plan.upserts):,} to upsert")
        if plan.sync.mode == "mirror":
            parts.append(f"{len(plan.deletes):,} to delete")
    parts.append(f"{plan.unchanged:,} unchanged" if plan.sync.mode != "changes"
                 else f"{plan.unchanged:,} already sent")
    if plan.retrying:
        parts.append(f"{plan.retrying:,} retried from the dead-letter store")
    return ", ".join(parts)


def _print_result(result: Any) -> None:
    plan = result.plan
    _print_note(plan)
    target = f"{plan.destination} ({plan.kind}) {escape(plan.stream)}"
    if plan.sync.mode == "changes":
        sent = f"{result.messages:,} message(s)"
    else:
        sent = f"{result.upserted:,} upserted" + (
            f", {result.deleted:,} deleted" if plan.sync.mode == "mirror" else "")
    unchanged = f", {plan.unchanged:,} unchanged" if plan.unchanged else ""
    if result.status == "succeeded":
        retried = f", {plan.retrying:,} from the dead-letter store" if plan.retrying else ""
        console.print(f"[green]✓[/] {plan.name} → {target}: {sent}{unchanged}{retried}",
                      highlight=False)
        return
    missing = result.failed + result.pending
    delivered = f"; {sent}" if result.upserted + result.deleted + result.messages else ""
    errors.print(f"[bold red]✗ sync {plan.name} failed:[/] {missing:,} of "
                 f"{len(plan.records):,} record(s) not delivered to {target}{delivered}",
                 highlight=False)
    if result.failed:
        tries = f" after {result.attempts} attempt(s)" if result.attempts else ""
        errors.print(f"    {result.failed:,} in the dead-letter store{tries}", highlight=False)
    if result.pending:
        errors.print(f"    {result.pending:,} not attempted (the sync stopped)",
                     highlight=False)
    errors.print(f"    [bold]last error:[/] {escape(result.error or 'unknown')}",
                 highlight=False)
    if result.hint:
        errors.print(f"    [dim]hint:[/] {escape(result.hint)}", highlight=False)
    errors.print(f"    the next 'retainer sync {plan.name}' sends them again; 'retainer sync "
                 "--dead-letters' lists them, 'retainer sync --log' shows the log",
                 highlight=False)


def _show_store(loaded: Any, names: list[str] | None, log: bool, limit: int) -> None:
    from retainer.sync import state
    if names:
        from retainer.sync.runner import selected
        selected(loaded, names)
    with loaded.store() as store:
        chosen: list[str | None] = list(names) if names else [None]
        if log:
            entries = sorted((e for n in chosen for e in state.log(store, n, limit)),
                             key=lambda e: -e.sync_id)[:limit]
            _print_log(entries)
        else:
            letters = [d for n in chosen for d in state.dead_letters(store, n)]
            _print_dead_letters(letters, limit)


def _print_log(entries: list[Any]) -> None:
    """One line per sync (when, what, how it ended), what it sent and its error under it:
    readable at any terminal width."""
    if not entries:
        console.print("no syncs yet")
        return
    for e in entries:
        run = f"  run {e.run_id}" if e.run_id is not None else ""
        head = Text(f"#{e.sync_id}  {e.started_at:%Y-%m-%d %H:%M}  {e.sync} → "
                    f"{e.destination}{run}  ")
        head.append(e.status, style=_STATUS.get(e.status, ""))
        console.print(head, highlight=False)
        sent = [f"{n:,} {label}" for n, label in ((e.upserted, "upserted"),
                                                  (e.deleted, "deleted"),
                                                  (e.messages, "messages")) if n]
        missing = [f"{n:,} {label}" for n, label in ((e.failed, "dead-lettered"),
                                                     (e.pending, "not attempted")) if n]
        summary = Text(", ".join(sent) or ("nothing delivered" if missing else "nothing new"),
                       style="" if sent else "dim")
        if missing:
            summary.append("; " + ", ".join(missing), style="red")
        indented(summary, 4)
        if e.error:
            indented(Text(e.error, style="red"), 4)


def _print_dead_letters(letters: list[Any], limit: int) -> None:
    if not letters:
        console.print("the dead-letter store is empty")
        return
    # Records that failed together share their error: one entry per sync and error.
    groups: dict[tuple[str, str], list[Any]] = {}
    for letter in letters:
        groups.setdefault((letter.sync, letter.error), []).append(letter)
    for (sync, error), items in list(groups.items())[:limit]:
        console.print(Text.assemble((sync, "bold"), f": {len(items):,} record(s), "
                                    f"{max(i.attempts for i in items)} attempt(s), last "
                                    f"{max(i.failed_at for i in items):%Y-%m-%d %H:%M}"),
                      highlight=False)
        keys = ", ".join(item.record_key for item in items[:3])
        keys += f" … ({len(items) - 3:,} more)" if len(items) > 3 else ""
        indented(Text(keys), 4)
        indented(Text(error, style="red"), 4)
    if len(groups) > limit:
        console.print(f"[dim]… and {len(groups) - limit:,} more (--limit)[/]")
    console.print(f"{len(letters):,} record(s) wait; the next 'retainer sync' sends them again")
