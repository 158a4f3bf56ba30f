"""`retainer act` (playbooks against the latest run), `retainer acts` (what each act did),
`retainer actions` (the ledger) and `retainer decisions` (the consent decision log)."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from retainer.cli.common import (
    STATUS_STYLE,
    ProjectOption,
    console,
    errors,
    fits,
    fitted_table,
    friendly,
    indented,
)
from retainer.cli.main import app

FormatOption = Annotated[str, typer.Option("--format", help="table, json or csv")]
FORMATS = ("table", "json", "csv")
_STYLE = {"fire": "green", "sent": "green", "recorded": "green", "held_out": "cyan",
          "stopped": "yellow", "cooldown": "dim", "capped": "yellow", "suppressed": "yellow",
          "failed": "red", "rejected": "red", "no_recipient": "yellow", "retired": "yellow"}


@app.command()
@friendly
def act(project: ProjectOption = Path("."),
        dry_run: Annotated[bool, typer.Option(
            "--dry-run", help="show what would fire and why; write and send nothing")] = False,
        playbook: Annotated[list[str] | None, typer.Option(
            help="only this playbook (repeatable)")] = None,
        limit: Annotated[int, typer.Option(min=0, help="items listed by --dry-run")] = 40,
        output: FormatOption = "table") -> None:
    """Run the playbooks against the latest run: plan, record in the ledger, dispatch."""
    from retainer.playbooks.act import act as run_act
    from retainer.playbooks.summary import counts, listed
    from retainer.project import Project
    _check_format(output, ("table", "json"))
    report = run_act(Project(project), dry_run=dry_run, playbooks=playbook or ())
    plan = report.plan
    if output == "json":
        sys.stdout.write(json.dumps({
            "as_of": plan.as_of.isoformat(), "run_id": plan.run_id, "dry_run": dry_run,
            "act_id": report.act_id, "playbooks": counts(report), "items": listed(report),
            "retired": report.retired, "failures": report.dispatched.failures},
            indent=2, default=str) + "\n")
    else:
        _print_act(report, counts(report), listed(report), limit)
    if not report.ok:
        raise typer.Exit(1)


def _print_act(report: Any, rows: list[dict[str, Any]], items: list[dict[str, Any]],
               limit: int) -> None:
    plan = report.plan
    run = f" (run {plan.run_id})" if plan.run_id is not None else ""
    head = f"as of {plan.as_of:%Y-%m-%d %H:%M} UTC{run}"
    if report.dry_run:
        console.print(f"[bold]Dry run {head}[/] — nothing is written or sent")
    else:
        retried = f", {report.retried} pending from earlier acts" if report.retried else ""
        retired = sum(report.retired.values())
        retired_text = f", {retired} retired" if retired else ""
        console.print(f"[bold]Act {report.act_id} {head}[/] — {report.written} new ledger "
                      f"row(s){retried}{retired_text}")
    if report.stale:
        errors.print("[yellow]note:[/] the latest run was computed by another version of the "
                     "rulebook; 'retainer run' first to act on the current segments",
                     highlight=False)
    _print_counts(rows)
    _print_retired(report.retired, report.dry_run)
    if report.dry_run:
        _print_items(items, limit)
    for failure in report.dispatched.failures:
        errors.print(f"[bold red]failed:[/] {failure}", highlight=False)
    if not report.dry_run and not report.dispatched.failures:
        console.print("[green]✓[/] everything planned was delivered, recorded or suppressed; "
                      "'retainer actions' lists the ledger, 'retainer decisions' the consent "
                      "decisions")


def _print_counts(rows: list[dict[str, Any]]) -> None:
    """A table of counts per playbook; where a terminal is too narrow for it (its headers
    would be cut to 'recipi…'), a line per playbook naming only the counts that are not 0."""
    # Only the outcomes that happened get a column.
    shown = [c for c in (rows[0] if rows else {}) if c in ("playbook", "fire")
             or any(row[c] for row in rows)]

    def cell(row: dict[str, Any], column: str) -> Text:
        return Text(str(row[column]), style="dim" if row[column] == 0 else
                    _STYLE.get(column.replace(" ", "_"), ""))

    table = fitted_table({c: "left" if c == "playbook" else "right" for c in shown},
                         [{c: cell(row, c) for c in shown} for row in rows], droppable=())
    if fits(table):
        console.print(table)
        return
    counts = [[cell(row, c).append(f" {c}") for c in shown[1:] if row[c] or c == "fire"]
              for row in rows]
    longest = max(len(part) for parts in counts for part in parts)
    room = console.width - max(len(row["playbook"]) for row in rows) - 3
    if room >= longest:  # the counts beside the names
        grid = Table.grid(padding=(0, 2))
        grid.add_column(no_wrap=True, style="bold")
        grid.add_column()
        for row, parts in zip(rows, counts, strict=True):
            grid.add_row(row["playbook"], _packed(parts, room))
        console.print(Padding(grid, (0, 0, 0, 1)))
        return
    for row, parts in zip(rows, counts, strict=True):  # under them
        indented(Text(row["playbook"], style="bold"), 1)
        indented(_packed(parts, console.width - 4), 4)


def _packed(parts: list[Text], room: int) -> Text:
    """`parts` joined by ' · ', a line break between two parts where the next one would not
    fit (never inside one: '84 suppressed' is read as a whole)."""
    packed, line = Text(), 0
    for index, part in enumerate(parts):
        if index:
            beside = line + 3 + len(part) <= room
            packed.append(" · " if beside else "\n")
            line = line + 3 if beside else 0
        packed.append_text(part)
        line += len(part)
    return packed


def _print_retired(retired: dict[str, int], dry_run: bool) -> None:
    """Pending actions of playbooks no longer in the rulebook: retired, never dispatched."""
    verb = "would retire" if dry_run else "retired"
    for playbook, count in retired.items():
        console.print(Text(f"{verb} {count} pending action(s) of '{playbook}', no longer in "
                           "the rulebook", style=_STYLE["retired"]), highlight=False)
    if retired and not dry_run:
        console.print(Text("'retainer actions --status retired' lists them", style="dim"),
                      highlight=False)


def _print_items(items: list[dict[str, Any]], limit: int) -> None:
    """One block per playbook, one line per action, the reason under it."""
    if not items:
        console.print("nothing would fire")
        return
    shown = items[:limit]
    labels = [_label(item) for item in shown]
    entity_width = max(len(str(item["entity"])) for item in shown)
    label_width = max(len(label) for label, _ in labels)
    playbook = None
    for item, (label, style) in zip(shown, labels, strict=True):
        if item["playbook"] != playbook:
            playbook = item["playbook"]
            console.print(Text(playbook, style="bold"))
        where = f" → {item['to']}" if item["to"] != "ledger" or item["outcome"] == "fire" \
            else ""
        line = Text(f"{item['entity']:<{entity_width}}  ")
        line.append(f"{label:<{label_width}}", style=style)
        line.append(f"  {item['action']}{where}")
        indented(line, 2)
        reason = item["why"] if item["why_not"] is None else f"{item['why_not']}; " \
            f"{item['why']}"
        indented(Text(f"why: {reason}", style="dim"), 4)
        if item["consent"]:
            decision, _, detail = item["consent"].partition(": ")
            indented(Text(f"consent {decision}: {detail}", style="dim"), 4)
    if len(items) > limit:
        console.print(f"… and {len(items) - limit} more (--limit N lists more, "
                      "--format json lists all)")


def _label(item: dict[str, Any]) -> tuple[str, str]:
    """What a dry run says will become of an item, and its colour."""
    if (item["consent"] or "").startswith("suppressed"):
        return "would be suppressed", _STYLE["suppressed"]
    outcome = item["outcome"]
    label = {"fire": "would fire", "held_out": "held out",
             "no_recipient": "no recipient"}.get(outcome, outcome)
    return label, _STYLE.get(outcome, "")


@app.command()
@friendly
def actions(project: ProjectOption = Path("."),
            playbook: Annotated[str | None, typer.Option(help="only this playbook")] = None,
            account: Annotated[str | None, typer.Option(help="only this account")] = None,
            status: Annotated[str | None, typer.Option(
                help="planned, sent, recorded, suppressed, failed, rejected, held_out, "
                     "stopped, capped, no_recipient or retired")] = None,
            since: Annotated[str | None, typer.Option(help="planned at or after")] = None,
            limit: Annotated[int, typer.Option(min=1, help="how many, newest first")] = 50,
            output: FormatOption = "table") -> None:
    """List the action ledger: tasks, routes, messages and webhooks the playbooks made."""
    from retainer.errors import RetainerError, did_you_mean
    from retainer.playbooks import ledger
    from retainer.project import Project
    _check_format(output, FORMATS)
    if status is not None and status not in ledger.STATUSES:
        raise RetainerError(f"unknown status '{status}'", hint=did_you_mean(
            status, ledger.STATUSES) or "one of " + ", ".join(ledger.STATUSES))
    equal = {column: value for column, value in (
        ("playbook", playbook), ("account_id", account), ("status", status))
        if value is not None}
    with Project(project).store() as store:
        rows = ledger.entries(store, equal, _moment(since) if since else None, limit)
    records = [{"planned_at": e.planned_at, "playbook": e.playbook, "entity": e.entity_id,
                "contact": e.contact_id, "action": e.action_kind,
                "what": _what(e.action_kind, e.payload),
                "to": f"{e.destination}/{e.stream}" if e.destination else "ledger",
                "status": e.status, "attempts": e.attempts, "reason": e.reason,
                "error": e.error, "key": e.action_key} for e in rows]
    _emit(records, output, _action_lines, "no actions in the ledger")


@app.command(name="acts")
@friendly
def list_acts(project: ProjectOption = Path("."),
              limit: Annotated[int, typer.Option(min=1, help="how many, newest first")] = 20,
              output: FormatOption = "table") -> None:
    """List the acts: when each ran, against which run, how it ended, what it did."""
    from retainer.playbooks import ledger
    from retainer.project import Project
    _check_format(output, FORMATS)
    with Project(project).store() as store:
        records = ledger.acts(store, limit)
    _emit(records, output, _act_lines, "no acts yet")


def _act_lines(record: dict[str, Any]) -> tuple[Text, str]:
    from retainer.playbooks.ledger import ACT_COUNTS
    head = Text(f"act {record['act_id']}  {_cell(record['started_at'])}  as of "
                f"{_cell(record['as_of'])} (run {record['run_id'] or '–'})  ")
    head.append(record["status"], style=STATUS_STYLE.get(record["status"], ""))
    if record["finished_at"] is not None:
        head.append(f"  {(record['finished_at'] - record['started_at']).total_seconds():.1f}s")
    # `planned` counts the actions this act planned (one per action and recipient); the
    # others, what became of them and of the pending rows it dispatched again.
    counts = ", ".join(f"{name.replace('_', ' ')} {record[name] or 0:,}"
                       for name in ACT_COUNTS if name != "planned")
    detail = f"planned {record['planned'] or 0:,}: {counts}"
    if record["error"]:
        detail += f"\nerror: {record['error']}"
    return head, detail


def _action_lines(record: dict[str, Any]) -> tuple[Text, str]:
    head = Text(f"{_cell(record['planned_at'])}  {record['playbook']}  {record['entity']}  ")
    head.append(record["status"], style=_STYLE.get(record["status"], ""))
    detail = f"{record['action']}: {record['what']} → {record['to']}"
    detail += f"\n{record['reason']}" if record["reason"] else ""
    if record["error"] and record["status"] == "suppressed":
        detail += f"\nconsent: {record['error']}"
    elif record["error"]:
        detail += f"\nerror (attempt {record['attempts']}): {record['error']}"
    return head, detail


def _what(kind: str, payload: dict[str, Any]) -> str:
    if "action" not in payload:  # held out or stopped: nothing was made
        return "nothing (see why)"
    if kind == "task":
        return f"{payload.get('title', '')} (owner {payload.get('owner') or '–'}, due " \
               f"{str(payload.get('due_at', ''))[:10]})"
    if kind == "route":
        return f"queue {payload.get('queue', '')}"
    if kind == "message":
        contact = payload.get("contact") or {}
        return f"'{payload.get('template', '')}' to {contact.get('id', '–')}"
    return str(payload.get("event", ""))


@app.command()
@friendly
def decisions(project: ProjectOption = Path("."),
              contact: Annotated[str | None, typer.Option(help="only this contact")] = None,
              account: Annotated[str | None, typer.Option(help="only this account")] = None,
              playbook: Annotated[str | None, typer.Option(help="only this playbook")] = None,
              outcome: Annotated[str | None, typer.Option(
                  help="sent, recorded, suppressed or failed")] = None,
              since: Annotated[str | None, typer.Option(help="decided at or after")] = None,
              limit: Annotated[int, typer.Option(min=1, help="how many, newest first")] = 50,
              output: FormatOption = "table") -> None:
    """Query the consent decision log: every automated decision about a person, and why."""
    from retainer.consent import log
    from retainer.errors import RetainerError
    from retainer.project import Project
    _check_format(output, FORMATS)
    if outcome is not None and outcome not in log.OUTCOMES:
        raise RetainerError(f"unknown outcome '{outcome}'",
                            hint="one of " + ", ".join(log.OUTCOMES))
    with Project(project).store() as store:
        tombstone = _tombstone(store, contact) if contact else None
        if tombstone is not None and output == "table":
            console.print(f"[yellow]{contact} was forgotten on request:[/] their decisions "
                          f"are kept under their tombstone ({tombstone[:16]})")
        found = log.query(store, contact=tombstone or contact, account=account,
                          playbook=playbook, outcome=outcome,
                          since=_moment(since) if since else None, limit=limit)
    _emit([d.as_dict() for d in found], output, _decision_lines, "no decisions recorded")


def _tombstone(store: Any, contact: str) -> str | None:
    """The tombstone a forgotten contact's decisions are kept under, or None."""
    from retainer.privacy.tombstones import Forgotten, subject_hash
    forgotten = Forgotten.of(store)
    if forgotten.salt is None or not forgotten(contact):
        return None
    return subject_hash(forgotten.salt, contact)


def _who(contact_id: str | None) -> str:
    """A contact as a person reads it; a tombstone (a forgotten person) by its first
    16 characters, as `retainer erasures` lists it."""
    text = str(contact_id)
    if len(text) == 64 and all(c in "0123456789abcdef" for c in text):
        return f"forgotten {text[:16]}"
    return f"contact {text}"


def _decision_lines(record: dict[str, Any]) -> tuple[Text, str]:
    head = Text(f"{_cell(record['decided_at'])}  {_who(record['contact_id'])}  ")
    head.append(record["outcome"], style=_STYLE.get(record["outcome"], ""))
    head.append(f"  {record['playbook'] or ''}")
    channel = f"/{record['channel']}" if record["channel"] else ""
    where = (f"{record['purpose']}{channel} · "
             f"{record['jurisdiction'] or 'unknown jurisdiction'} "
             f"(policy {record['policy']}, {record['rule']})")
    return head, f"{where}\n{record['reason']}"


def _emit(records: list[dict[str, Any]], output: str,
          lines: Callable[[dict[str, Any]], tuple[Text, str]], empty: str) -> None:
    if output == "json":
        sys.stdout.write(json.dumps(records, indent=2, default=str) + "\n")
        return
    if output == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(records[0]) if records else [])
        writer.writeheader()
        for record in records:
            writer.writerow({k: v.isoformat(sep=" ") if isinstance(v, datetime) else _cell(v)
                             for k, v in record.items()})
        sys.stdout.write(buffer.getvalue())
        return
    if not records:
        console.print(empty)
        return
    # One line of facts and the reason under it: readable in any terminal width.
    for record in records:
        head, detail = lines(record)
        console.print(head, highlight=False)
        for line in detail.splitlines():
            indented(Text(line, style="dim"), 4)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M}"
    return str(value)


def _moment(text: str) -> datetime:
    from retainer.project import parse_as_of
    return parse_as_of(text, "--since")


def _check_format(output: str, allowed: tuple[str, ...]) -> None:
    if output not in allowed:
        from retainer.errors import RetainerError
        raise RetainerError(f"unknown format '{output}'", hint="one of " + ", ".join(allowed))
