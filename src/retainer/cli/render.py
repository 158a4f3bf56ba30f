"""Rich renderings of run reports, explanations, problems and test results."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from retainer.explain import Clause, Explanation
    from retainer.project import RunReport
    from retainer.testing import CaseResult

_BAND_STYLE = {"green": "green", "yellow": "yellow", "red": "red"}


def value(item: Any) -> str:
    if item is None:
        return "–"
    if isinstance(item, bool):
        return "yes" if item else "no"
    if isinstance(item, float):
        return f"{item:,.2f}".rstrip("0").rstrip(".") if item % 1 else f"{item:,.0f}"
    return str(item)


def run_report(console: Console, report: RunReport) -> None:
    console.print(f"[bold]Run as of {report.as_of:%Y-%m-%d %H:%M} UTC[/] — "
                  f"{report.accounts:,} accounts, {report.contacts:,} contacts, "
                  f"{report.seconds:.2f}s")
    for name, counts in report.dimensions.items():
        table = Table(title=f"segment: {name}", title_justify="left", show_edge=False)
        table.add_column("segment")
        table.add_column("entities", justify="right")
        table.add_column("share", justify="right")
        total = sum(n for _, n in counts) or 1
        for segment, count in counts:
            table.add_row(value(segment), f"{count:,}", f"{100 * count / total:.1f}%")
        console.print(table)
    if report.health_bands:
        table = Table(title="health bands", title_justify="left", show_edge=False)
        table.add_column("band")
        table.add_column("accounts", justify="right")
        for band, count in report.health_bands:
            style = _BAND_STYLE.get(str(band), "")
            table.add_row(Text(value(band), style=style), f"{count:,}")
        console.print(table)
    if report.tags:
        table = Table(title="tags", title_justify="left", show_edge=False)
        table.add_column("tag")
        table.add_column("holds for", justify="right")
        for tag, count in report.tags.items():
            table.add_row(tag, f"{count:,}")
        console.print(table)
    quality(console, report)
    console.print("results: " + ", ".join(str(p) for p in report.outputs.values()))


def quality(console: Console, report: RunReport) -> None:
    table = Table(title="data quality", title_justify="left", show_edge=False)
    for column in ("source", "read", "used", "rejected", "why rejected", "after as_of"):
        table.add_column(column, justify="left" if column in ("source", "why rejected")
                         else "right")
    for row in report.quality:
        reasons = [f"{n:,} {label}" for n, label in (
            (row.missing_id, "without id"), (row.duplicate_id, "duplicate id"),
            (row.unknown_id, "unknown id"), (row.bad_time, "bad or missing time")) if n]
        after = f"{row.after_as_of:,}"
        if row.future_dated:
            after += f" ({row.future_dated:,} future-dated)"
        used = row.rows_read - row.rejected - row.after_as_of
        style = "yellow" if row.rejected else ""
        table.add_row(row.source, f"{row.rows_read:,}", f"{used:,}",
                      Text(f"{row.rejected:,}", style=style), ", ".join(reasons) or "–", after)
    console.print(table)


def _clause(clause: Clause) -> Text:
    mark = {True: ("✓", "green"), False: ("✗", "red"), None: ("?", "yellow")}[clause.value]
    uses = ", ".join(f"{label} = {value(v)}" for label, v in clause.uses)
    text = Text(f"{mark[0]} ", style=mark[1])
    text.append(clause.text)
    if uses:
        text.append(f"   ({uses})", style="dim")
    return text


def explanation(console: Console, item: Explanation) -> None:
    title = f"{item.level} {item.entity_id}"
    name = item.row.get("name")
    if name:
        title += f" — {name}"
    console.print(Panel(f"as of {item.as_of} UTC · rulebook {item.rulebook_hash}",
                        title=title, title_align="left"))
    for dimension in item.dimensions:
        parts: list[Any] = [Text.assemble((f"{dimension.name}: ", "bold"),
                                          (value(dimension.segment), "bold cyan"))]
        for rule in dimension.rules:
            if rule.when is None:
                parts.append(Text(f"  → {rule.segment}: else (no earlier rule matched)",
                                  style="green" if rule.matched else ""))
                continue
            verdict = "matched" if rule.matched else "did not match"
            join = ""
            if len(rule.clauses) > 1:
                join = " (all of)" if rule.mode == "all" else " (any of)"
            parts.append(Text(f"  {'→' if rule.matched else ' '} {rule.segment}: {verdict}"
                              f"{join}:", style="green" if rule.matched else "dim"))
            parts.extend(Text("      ") + _clause(c) for c in rule.clauses)
        if dimension.held is not None:
            held = dimension.held
            since = f", entered {held.since:%Y-%m-%d}" if held.since else ""
            parts.append(Text(f"  ⏸ held in '{value(dimension.segment)}': the rules give "
                              f"'{value(held.candidate)}', but {held.rule}{since}",
                              style="yellow"))
        console.print(Group(*parts))
    if item.tags:
        console.print(Text("tags", style="bold"))
        for tag in item.tags:
            console.print(Text(f"  {'✓' if tag.holds else '✗'} {tag.name}",
                               style="green" if tag.holds else "dim"))
            for c in tag.clauses:
                console.print(Text("      ") + _clause(c))
    if item.health is not None:
        health = item.health
        band = value(health.band)
        console.print(Text.assemble(("health: ", "bold"), (value(health.score), "bold"),
                                    (f" ({band})", _BAND_STYLE.get(band, ""))))
        table = Table(show_edge=False, box=None, padding=(0, 2))
        for column in ("component", "trait", "value", "score", "weight", "contributes"):
            table.add_column(column, justify="left" if column in ("component", "trait")
                             else "right")
        for part in health.components:
            score = None if part.score is None else float(part.score)
            contributes = "missing, weight redistributed" if score is None else \
                f"{score * part.share:.1f}"
            table.add_row(part.name, part.trait, value(part.value), value(score),
                          f"{part.weight:g} ({100 * part.share:.0f}%)", contributes)
        console.print(table)
        bands = ", ".join(f"{name} ≥ {threshold:g}" for name, threshold in health.bands)
        console.print(Text(f"  bands: {bands}", style="dim"))
    table = Table(title="traits", title_justify="left", show_edge=False)
    table.add_column("trait")
    table.add_column("value", justify="right")
    table.add_column("definition", style="dim")
    for name, (trait_value, definition) in item.traits.items():
        table.add_row(name, value(trait_value), definition)
    console.print(table)


def test_results(console: Console, results: list[CaseResult]) -> None:
    for result in results:
        if result.passed:
            console.print(Text(f"✓ {result.case.name}", style="green"))
            continue
        console.print(Text(f"✗ {result.case.name}  ({result.location})", style="bold red"))
        if result.error:
            console.print(Text(f"    {result.error}", style="red"))
        if result.mismatches:
            table = Table(show_edge=False, padding=(0, 2))
            for column in ("entity", "column", "expected", "actual", "why"):
                table.add_column(column, overflow="fold")
            for m in result.mismatches:
                table.add_row(f"{m.level} {m.entity_id}", m.column, Text(value(m.expected),
                              style="green"), Text(value(m.actual), style="red"), m.why or "")
            console.print(table)
    failed = sum(not r.passed for r in results)
    passed = len(results) - failed
    style = "bold red" if failed else "bold green"
    console.print(Text(f"{passed} passed, {failed} failed", style=style))
