"""An impact as JSON (the documented `retainer.diff/1` shape) and as a pull-request comment in
Markdown; the move-matrix layout here is shared with the terminal table of the CLI."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from retainer.diff.impact import (
    NONE,
    Cell,
    Impact,
    RuleReason,
    SideReason,
    moved_count,
    plural,
    segment_rank,
)

SCHEMA = "retainer.diff/1"


def format_value(value: Any) -> str:
    if value is None:
        return NONE
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".") if value % 1 else f"{value:,.0f}"
    return str(value)


# --- the move matrix -----------------------------------------------------------------------

def matrix_axes(cells: Sequence[Cell], order: Sequence[str]
                ) -> tuple[list[str | None], list[str | None]]:
    """The matrix's rows (segments before) and columns (segments after) that hold anyone,
    in `order` (the rules' order), unknown segments next and "no segment" last."""
    def ranked(segments: Iterable[str | None]) -> list[str | None]:
        return sorted(set(segments), key=lambda s: segment_rank(order, s))
    return (ranked(c.from_segment for c in cells if c.count),
            ranked(c.to_segment for c in cells if c.count))


@dataclass(frozen=True)
class Matrix:
    """A before → after table ready to draw: its axes, its cells and the moves per row
    ("moved out") and per column ("moved in")."""

    cells: tuple[Cell, ...]
    rows: tuple[str | None, ...]
    columns: tuple[str | None, ...]

    @classmethod
    def of(cls, cells: Sequence[Cell], order: Sequence[str]) -> Matrix:
        rows, columns = matrix_axes(cells, order)
        return cls(tuple(cells), tuple(rows), tuple(columns))

    def cell(self, row: str | None, column: str | None) -> Cell | None:
        return next((c for c in self.cells if (c.from_segment, c.to_segment) == (row, column)
                     and c.count), None)

    def moved_out(self, row: str | None) -> int:
        return moved_count(c for c in self.cells if c.from_segment == row)

    def moved_in(self, column: str | None) -> int:
        return moved_count(c for c in self.cells if c.to_segment == column)

    @property
    def moved(self) -> int:
        return moved_count(self.cells)


# --- JSON ----------------------------------------------------------------------------------

def impact_dict(impact: Impact) -> dict[str, Any]:
    """The documented JSON shape (docs/diff.md); `schema` changes when it does."""
    health = impact.health
    return {
        "schema": SCHEMA,
        "as_of": impact.as_of.isoformat(),
        "old": {"label": impact.old_label, "rulebook_hash": impact.old_hash},
        "new": {"label": impact.new_label, "rulebook_hash": impact.new_hash},
        "summary": impact.summary,
        "entities": {t.level: {"total": t.entities, "moved": t.moved} for t in impact.totals},
        "dimensions": [{
            "name": d.name, "level": d.level, "status": d.status, "moved": d.moved,
            "rules_changed": d.rules_changed,
            "segments": {"old": list(d.old_segments), "new": list(d.new_segments),
                         "added": list(d.segments_added), "removed": list(d.segments_removed)},
            "matrix": [_cell(c) for c in d.cells],
            "samples": [{"id": s.entity_id, "from": s.from_segment, "to": s.to_segment,
                         "old": _side_dict(s.old), "new": _side_dict(s.new)}
                        for s in d.samples]} for d in impact.dimensions],
        "tags": [{"name": t.name, "level": t.level, "status": t.status,
                  "rules_changed": t.rules_changed, "old": t.old_count, "new": t.new_count,
                  "gained": t.gained, "lost": t.lost} for t in impact.tags],
        "health": None if health is None else {
            "status": health.status, "definition_changed": health.definition_changed,
            "score_changed": health.score_changed, "band_moved": health.band_moved,
            "mean_abs_change": health.mean_abs_change,
            "max_abs_change": health.max_abs_change,
            "matrix": [_cell(c) for c in health.cells]},
    }


def impact_json(impact: Impact) -> str:
    return json.dumps(impact_dict(impact), indent=2, ensure_ascii=False) + "\n"


def _cell(cell: Cell) -> dict[str, Any]:
    return {"from": cell.from_segment, "to": cell.to_segment, "count": cell.count,
            "moved": cell.moved}


def _side_dict(side: SideReason) -> dict[str, Any]:
    held = side.held
    return {"segment": side.segment, "matched": _rule_dict(side.matched),
            "passed_over": _rule_dict(side.passed_over),
            "held": None if held is None else {"reason": held.reason, "candidate":
                                               held.candidate, "rule": held.rule}}


def _rule_dict(rule: RuleReason | None) -> dict[str, Any] | None:
    if rule is None:
        return None
    return {"segment": rule.segment, "when": rule.when, "matched": rule.matched,
            "mode": rule.mode, "clauses": [{"text": c.text, "value": c.value,
                         "values": {label: _jsonable(v) for label, v in c.values}}
                        for c in rule.clauses]}


def _jsonable(value: Any) -> Any:
    """A trait value as JSON: numbers stay numbers (NaN and ∞ become null), dates ISO text."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


# --- Markdown ------------------------------------------------------------------------------

def impact_markdown(impact: Impact) -> str:
    """A pull-request comment: heading, summary, a table per moved dimension, samples."""
    lines = [f"### Retainer impact: {_code(impact.old_label)} → {_code(impact.new_label)}", "",
             f"As of {impact.as_of:%Y-%m-%d %H:%M} UTC · rulebook {_code(impact.old_hash)} → "
             f"{_code(impact.new_hash)}", "", f"**{impact.summary}**", ""]
    quiet = []
    for d in impact.dimensions:
        if d.status == "unchanged":
            quiet.append(_code(d.name))
            continue
        lines += [f"#### {_code(d.name)} ({d.level}s, {d.status}): "
                  f"{plural(d.moved, d.level)} moved", ""]
        lines += _markdown_matrix(Matrix.of(d.cells, d.order), "before ＼ after")
        lines += ["", *(f"_{what}: {', '.join(map(_code, names))}_\n"
                        for what, names in d.segment_changes)]
    if quiet:
        lines += [f"No moves in {', '.join(quiet)}.", ""]
    moved_tags = [t for t in impact.tags if t.status != "unchanged"]
    if moved_tags:
        lines += ["#### Tags", "", "| tag | level | status | before | after | gained | lost |",
                  "|---|---|---|--:|--:|--:|--:|"]
        lines += [_row([_code(t.name), t.level, t.status, f"{t.old_count:,}",
                        f"{t.new_count:,}", f"{t.gained:,}", f"{t.lost:,}"]) for t in moved_tags]
        lines.append("")
    health = impact.health
    if health is not None and health.status != "unchanged":
        lines += [f"#### Health ({health.status}): {plural(health.band_moved, 'account')} "
                  f"change band; {plural(health.score_changed, 'score')} changed, mean |Δ| "
                  f"{format_value(health.mean_abs_change)}, max |Δ| "
                  f"{format_value(health.max_abs_change)}", ""]
        lines += [*_markdown_matrix(Matrix.of(health.cells, health.bands),
                                    "band before ＼ after"), ""]
    sampled = [d for d in impact.dimensions if d.samples]
    if sampled:
        count = sum(len(d.samples) for d in sampled)
        lines += ["<details>", f"<summary>Sample reasons ({count})</summary>", ""]
        for d in sampled:
            for s in d.samples:
                lines += [f"- {d.level} {_code(s.entity_id)} — {_code(d.name)}: "
                          f"{_code(s.from_segment)} → {_code(s.to_segment)}",
                          f"  - before: {_markdown_side(s.old)}",
                          f"  - after: {_markdown_side(s.new)}"]
        lines += ["", "</details>", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _code(text: str | None) -> str:
    if text is None:
        return NONE
    # A backtick inside needs a longer fence, padded so it does not touch the fence.
    return f"`{text}`" if "`" not in text else f"`` {text} ``"


def _markdown_matrix(matrix: Matrix, corner: str) -> list[str]:
    lines = [_row([corner, *(_code(c) for c in matrix.columns), "moved out"]),
             "|---" + "|--:" * (len(matrix.columns) + 1) + "|"]
    for row in matrix.rows:
        cells = [matrix.cell(row, column) for column in matrix.columns]
        lines.append(_row([_code(row), *("" if c is None else f"**{c.count:,}**" if c.moved
                                        else f"{c.count:,}" for c in cells),
                           count_or_blank(matrix.moved_out(row))]))
    lines.append(_row(["moved in", *(count_or_blank(matrix.moved_in(c)) for c in matrix.columns),
                       f"**{matrix.moved:,}**"]))
    return lines


def _row(cells: Iterable[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def count_or_blank(count: int) -> str:
    """A count for a table cell, where zero is better left empty."""
    return f"{count:,}" if count else ""


def _markdown_rule(rule: RuleReason, verdict: str) -> str:
    if rule.when is None:
        return f"{_code(rule.segment)} {verdict} (else: no earlier rule matched)"
    clauses = "; ".join(
        f"{'✓' if c.value is True else '✗' if c.value is False else '?'} {_code(c.text)}"
        + (f" ({', '.join(f'{k} = {format_value(v)}' for k, v in c.values)})"
           if c.values else "") for c in rule.clauses)
    join = f" ({rule.mode} of)" if len(rule.clauses) > 1 else ""
    return f"{_code(rule.segment)} {verdict}{join}: {clauses}"


def _markdown_side(side: SideReason) -> str:
    parts = []
    if side.held is not None:
        parts.append(f"held in {_code(side.segment)} ({side.held.rule}); the rules gave "
                     f"{_code(side.held.candidate)}")
    if side.passed_over is not None:
        parts.append(_markdown_rule(side.passed_over, "did not match"))
    if side.matched is not None:
        parts.append(_markdown_rule(side.matched, "matched"))
    return " — ".join(parts) or "no rule matched"
