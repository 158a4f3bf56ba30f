"""Privacy commands: `forget` (erasure), `erasures` (tombstones) and `lineage`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from retainer.cli.common import ProjectOption, console, errors, friendly, indented
from retainer.cli.main import app

if TYPE_CHECKING:
    from retainer.compile.lineage.graph import Element, Field, Lineage
    from retainer.privacy.compaction import Compaction
    from retainer.privacy.tombstones import Tombstone
    from retainer.project import Project
    from retainer.rulebook.loader import Rulebook


@app.command()
@friendly
def forget(contact: Annotated[str | None, typer.Option(help="the contact's id")] = None,
           email: Annotated[str | None, typer.Option(
               help="every contact with this address (the contacts source's email column)")
           ] = None,
           project: ProjectOption = Path("."),
           yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask")] = False,
           dry_run: Annotated[bool, typer.Option(
               "--dry-run", help="show what would be removed; change nothing")] = False,
           compact: Annotated[bool | None, typer.Option(
               "--compact/--no-compact",
               help="after the erasure, rewrite the database files so no deleted byte stays "
                    "in them (the default; --no-compact skips it for a very large store); "
                    "--compact alone only rewrites them")] = None
           ) -> None:
    """Erase a person everywhere; a salted-hash tombstone keeps later runs from bringing
    them back.

    History, results, exports and synced records go; the action ledger and decision log
    keep the tombstone in their place. Then the database files are rewritten so no deleted
    byte of theirs stays in them."""
    from retainer.privacy.erasure import apply_erasure, plan_erasure
    from retainer.project import Project
    loaded = Project(project)
    if compact and contact is None and email is None:
        _compact_only(loaded, dry_run)
        return
    plan = plan_erasure(loaded, contact, email)
    subject = plan.subject
    addresses = len(subject.emails)
    console.print(f"[bold]{'Would forget' if dry_run else 'Forgetting'}[/] {subject.described}"
                  + (f" and {addresses} address{'es' if addresses != 1 else ''}"
                     if addresses else ""))
    if plan.forgotten_before:
        console.print("[yellow]already forgotten[/] on "
                      f"{min(t.erased_at for t in plan.forgotten_before):%Y-%m-%d %H:%M} UTC; "
                      "anything left is removed again and unfinished deletions retried")
    for line in plan.lines():
        console.print(f"  {line}")
    if compact is not False:
        console.print("  then the database files are rewritten without the deleted bytes")
    if dry_run:
        console.print("dry run: nothing was changed")
        return
    if not yes and not typer.confirm("This cannot be undone. Forget this person?"):
        errors.print("nothing was changed")
        raise typer.Exit(1)
    report = apply_erasure(loaded, plan, compact=compact is not False)
    for outcome in report.outcomes:
        style = "green" if outcome.ok and not outcome.detail.startswith("not") else (
            "yellow" if outcome.ok else "red")
        console.print(Text(f"  {outcome.destination} ({outcome.what}): {outcome.detail}",
                           style=style))
    compacted = _compacted(report.compaction)
    if not report.complete:
        failed = sum(1 for o in report.outcomes if not o.ok)
        errors.print(f"[bold red]error:[/] {failed} deletion(s) at destinations failed; the "
                     "person is forgotten here and left out of every run, but not yet "
                     "everywhere")
        errors.print("      [dim]hint:[/] fix the destination, then run the same "
                     "'retainer forget' again: it retries what is left")
    if not report.complete or not compacted:
        raise typer.Exit(1)
    console.print("[green]✓[/] forgotten; tombstones keep later runs from bringing them back")


def _compact_only(loaded: Project, dry_run: bool) -> None:
    from retainer.privacy.compaction import compact_project, pending_since
    since = pending_since(loaded)
    owed = f"owed since {since:%Y-%m-%d %H:%M} UTC" if since else "none is owed"
    if dry_run:
        console.print(f"would rewrite the state store and the published results ({owed})")
        console.print("dry run: nothing was changed")
        return
    if not _compacted(compact_project(loaded), erased=False):
        raise typer.Exit(1)
    console.print("[green]✓[/] compacted: no deleted bytes are left in the database files")


def _compacted(done: Compaction | None, erased: bool = True) -> bool:
    """Print what a compaction rewrote, or its error (an erasure before it stands); None is
    a compaction skipped with --no-compact."""
    from rich.markup import escape
    if done is None:
        console.print("  [yellow]not compacted[/] (--no-compact): deleted bytes stay in the "
                      "database files until 'retainer forget --compact'")
        return True
    for item in done.rewritten:
        console.print(f"  rewrote {escape(item.what)} ({_size(item.before)} → "
                      f"{_size(item.after)})", highlight=False)
    if done.problem is not None:
        errors.print(f"[bold red]error:[/] {escape(done.problem.message)}", highlight=False)
        errors.print("      [dim]hint:[/] " + ("the erasure itself is done; " if erased else "")
                     + "deleted bytes may stay in the database files until 'retainer forget "
                     "--compact' succeeds"
                     + (f" ({escape(done.problem.hint)})" if done.problem.hint else ""),
                     highlight=False)
    return done.ok


def _size(count: int) -> str:
    return f"{count / 1e6:.1f} MB" if count >= 1e6 else f"{max(count / 1e3, 1):.0f} kB"


@app.command()
@friendly
def erasures(project: ProjectOption = Path(".")) -> None:
    """The erasure tombstones: when each was made and whether it reached every destination."""
    from retainer.privacy.compaction import pending_since
    from retainer.privacy.tombstones import tombstones
    from retainer.project import Project
    loaded = Project(project)
    with loaded.store() as store:
        stones = tombstones(store)
    since = pending_since(loaded)
    if not stones:
        console.print("no one has been forgotten")
    else:
        _tombstones(stones)
    if since is not None:
        console.print(f"[yellow]not compacted[/] since {since:%Y-%m-%d %H:%M} UTC: deleted "
                      "bytes may stay in the database files until 'retainer forget "
                      "--compact'")


def _tombstones(stones: list[Tombstone]) -> None:
    table = Table(show_edge=False)
    for column in ("tombstone", "kind", "erased (UTC)", "status", "destinations"):
        table.add_column(column)
    for stone in stones:
        reached = stone.propagated.get("destinations", [])
        table.add_row(stone.subject_hash[:16], stone.kind, f"{stone.erased_at:%Y-%m-%d %H:%M}",
                      Text("complete" if stone.complete else "unfinished",
                           style="green" if stone.complete else "red"),
                      ", ".join(sorted({str(d["destination"]) for d in reached})) or "–")
    console.print(table)


@app.command()
@friendly
def lineage(element: Annotated[str | None, typer.Argument(
                help="a trait, dimension.segment, tag, health, playbook or sync, or a source "
                     "field (source.column) to see who uses it; default: every playbook "
                     "and sync")] = None,
            project: ProjectOption = Path(".")) -> None:
    """The source fields an element depends on, with their provenance — for a data
    protection review."""
    from retainer.compile.lineage import trace
    from retainer.compile.lineage.graph import Field
    from retainer.project import Project
    loaded = Project(project)
    catalog = loaded.catalog()
    loaded.plan(catalog=catalog)  # lineage is traced for a rulebook that compiles
    graph = trace(loaded.rulebook, catalog)
    rulebook = loaded.rulebook
    if element is None:
        _overview(graph, rulebook)
        return
    source, _, column = element.partition(".")
    if source in rulebook.sources and column:
        _users(graph, Field(source, column))
        return
    _fields(graph, rulebook, graph.find(element))


def _overview(graph: Lineage, rulebook: Rulebook) -> None:
    from retainer.compile.lineage.graph import Element
    from retainer.privacy.purposes import allows
    users = [(Element("playbook", n), p.purpose) for n, p in rulebook.playbooks.items()]
    users += [(Element("sync", n), s.purpose) for n, s in rulebook.syncs.items()]
    if not users:
        console.print("no playbooks or syncs; name an element, e.g. 'retainer lineage "
                      "lifecycle.at_risk'")
        return
    for item, purpose in users:
        fields = sorted(graph.fields(item))
        refused = [f for f in fields if not allows(rulebook, f, purpose)]
        console.print(Text.assemble((str(item), "bold"), f" (purpose {purpose}): "
                                    f"{len(fields)} source fields",
                                    (f", {len(refused)} not allowed for {purpose}", "bold red")
                                    if refused else ""))
        by_source: dict[str, list[Field]] = {}
        for field in fields:
            by_source.setdefault(field.source, []).append(field)
        for source, columns in by_source.items():
            line = Text(f"{source}: ")
            for index, field in enumerate(columns):
                line.append(", " if index else "")
                allowed = allows(rulebook, field, purpose)
                line.append(field.column + ("" if allowed else " ✗"),
                            style="" if allowed else "bold red")
            indented(line, 2)


def _fields(graph: Lineage, rulebook: Rulebook, element: Element) -> None:
    fields = sorted(graph.fields(element))
    console.print(f"[bold]{element}[/] depends on {len(fields)} source field(s)")
    for field in fields:
        provenance = rulebook.sources[field.source].provenance_of(field.column)
        purposes = provenance.purposes if provenance else None
        declared = [d for d in (provenance.legal_basis, provenance.jurisdiction,
                                provenance.origin) if d] if provenance else []
        indented(Text.assemble(
            (str(field), "bold"),
            ("  for " + ", ".join(purposes)) if purposes is not None else ("  any purpose",
                                                                           "dim"),
            (f"  ({', '.join(declared)})", "dim") if declared else ""), 2)
        chain = graph.chain(element, field)[1:-1]
        indented(Text("via " + " → ".join(str(step) for step in chain)
                      if chain else "directly", style="dim"), 6)


def _users(graph: Lineage, field: Field) -> None:
    users = graph.users(field)
    if not users:
        console.print(f"nothing in the rulebook uses {field}")
        return
    console.print(f"[bold]{field}[/] is used by {len(users)} element(s)")
    for user in users:
        chain = graph.chain(user, field)[1:-1]
        via = " → ".join(str(step) for step in chain)
        console.print(f"  {user}" + (f"  [dim](through {via})[/]" if via else ""))
