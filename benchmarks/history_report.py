"""benchmarks/history.md: the marked results sections the benchmark rewrites, and the line
that says where and on what code each result was measured."""

from __future__ import annotations

from typing import Any

from history_data import HERE, REPORT


def context_line(c: dict[str, Any], r: dict[str, Any]) -> str:
    dirty = (f", uncommitted changes in {', '.join(c['dirty'])}" if c["dirty"] else "")
    changed = (" **Retainer's source changed during this measurement** (another engineer's "
               "edits), so the contenders may have run different code."
               if r["src_before"] != r["src_after"] else "")
    frozen = " (run from a frozen copy of it)" if c.get("frozen") else ""
    return (f"Measured {c['when']} at commit `{c['commit']}`{dirty}{frozen}, source hash "
            f"`{r['src_before']}`; {c['cores']} cores, Python {c['python']}, DuckDB "
            f"{c['duckdb']}; load average {r['load_before']:.1f} before, "
            f"{r['load_after']:.1f} after.{changed}")


TEMPLATE = """# History benchmark

<!-- results:backfill -->
<!-- /results:backfill -->

<!-- results:size -->
<!-- /results:size -->

<!-- results:backfill-quick -->
<!-- /results:backfill-quick -->

<!-- results:size-quick -->
<!-- /results:size-quick -->
"""


def warn_if_changed(r: dict[str, Any]) -> None:
    if r["src_before"] != r["src_after"]:
        print("WARNING: Retainer's source changed during this measurement")


def write_section(name: str, body: str) -> None:
    text = REPORT.read_text() if REPORT.exists() else TEMPLATE
    start, end = f"<!-- results:{name} -->", f"<!-- /results:{name} -->"
    if start not in text or end not in text:
        text = text.rstrip("\n") + f"\n\n{start}\n{end}\n"
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    REPORT.write_text(f"{head}{start}\n{body}\n{end}{tail}")
    print(f"wrote the {name} results into {REPORT.relative_to(HERE.parent)}")
